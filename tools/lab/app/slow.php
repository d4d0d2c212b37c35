<?php
// /slow.php?ms=N: burns N ms of CPU (default 20, at most 2000) on any pool,
// then answers like index.php, with the clock calls made in X-Lab-Calls.
// For trying the effect by hand: skewload --path '/slow.php?ms=50'.
require __DIR__ . '/burn.php';

$name = $_SERVER['LAB_BACKEND'] ?? 'unknown';
$ms = max(0, min(2000, (int)($_GET['ms'] ?? 20)));
$calls = $ms > 0 ? lab_burn($ms) : 0;
header('X-Backend: ' . $name);
header('X-Lab-Calls: ' . $calls);
header('Content-Type: text/plain');
$body = $name . "\n";
header('Content-Length: ' . strlen($body));
echo $body;
