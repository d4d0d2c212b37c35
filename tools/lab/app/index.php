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
// A cold server (scenario 4): the lab writes the time of a pool's restart
// into LAB_COLD_FILE; for LAB_WARMUP_S seconds after it every page burns up
// to LAB_WARMUP_MS more CPU, falling linearly to none -- a stand-in for the
// caches a real application fills after a restart (this tiny page gives
// opcache next to nothing to warm).
$warm_ms = (float)($_SERVER['LAB_WARMUP_MS'] ?? 0);
$warm_s = (float)($_SERVER['LAB_WARMUP_S'] ?? 0);
$cold = $_SERVER['LAB_COLD_FILE'] ?? '';
if ($warm_ms > 0 && $warm_s > 0 && $cold !== '' && is_readable($cold)) {
    $age = microtime(true) - (float)file_get_contents($cold);
    if ($age >= 0 && $age < $warm_s) {
        $burn += $warm_ms * (1 - $age / $warm_s);
    }
}
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
