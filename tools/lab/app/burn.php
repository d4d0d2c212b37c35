<?php
// lab_burn(MS): spins calling microtime() and gettimeofday() -- cheap
// clock reads, millions of them, like an instrumentation agent timing every
// function call -- until this process has used MS milliseconds of CPU
// (user + system, from getrusage). Counting CPU time rather than wall time
// keeps the cost per request fixed when the machine is busy: a crowded
// server then gets slower, as a real one does.
function lab_cpu_ms(): float
{
    $u = getrusage();
    return ($u['ru_utime.tv_sec'] + $u['ru_stime.tv_sec']) * 1000.0
        + ($u['ru_utime.tv_usec'] + $u['ru_stime.tv_usec']) / 1000.0;
}

function lab_burn(float $ms): int
{
    $end = lab_cpu_ms() + $ms;
    $calls = 0;
    do {
        for ($i = 0; $i < 2000; $i++) {
            microtime(true);
            gettimeofday();
        }
        $calls += 4000;
    } while (lab_cpu_ms() < $end);
    return $calls;
}
