<?php
// The lab's application: answers with the name of the pool that served it,
// as the header X-Backend and as the body's first line (skewload reads
// either). LAB_BACKEND and LAB_BURN_MS come from the pool's nginx
// (fastcgi_param): every request burns LAB_BURN_MS of CPU -- on the slow
// pool much more, the way the monitoring agent of incident 1 did -- then
// waits LAB_WAIT_MS without CPU, like a page waiting on its database.
require __DIR__ . '/burn.php';

$name = $_SERVER['LAB_BACKEND'] ?? 'unknown';
$burn = (float)($_SERVER['LAB_BURN_MS'] ?? 0);
$wait = (float)($_SERVER['LAB_WAIT_MS'] ?? 0);
if ($burn > 0) {
    lab_burn($burn);
}
if ($wait > 0) {
    usleep((int)($wait * 1000));
}
header('X-Backend: ' . $name);
header('Content-Type: text/plain');
$body = $name . "\n";
header('Content-Length: ' . strlen($body));
echo $body;
