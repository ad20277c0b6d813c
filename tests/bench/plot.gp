# tests/bench/plot.gp - throughput and p99 RCPT latency against connections
# usage: gnuplot -e "dat='points.dat'; png='bench.png'" plot.gp
# points.dat columns: conns rcpts domains noop_msg warm_msg nocache_msg
#   noop_p99 warm_p99 nocache_p99 (RCPT, us) ... (see tests/bench/run)
set terminal pngcairo size 1200,500 font ",10" noenhanced
set output png
set multiplot layout 1,2 title "mxswitch bench, 10 domains: no-op milter, warm cache, cache off"
set logscale x 2
set xlabel "concurrent milter connections"
set key top left
set grid
sel(r) = sprintf("< awk '$2 == %d && $3 == 10' %s", r, dat)
set ylabel "recipients/s"
set logscale y
plot sel(1) using 1:($4*$2) with linespoints lc 1 pt 7 title "no-op, 1 rcpt/msg", \
     sel(1) using 1:($5*$2) with linespoints lc 2 pt 7 title "warm, 1 rcpt/msg", \
     sel(1) using 1:($6*$2) with linespoints lc 3 pt 7 title "cache off, 1 rcpt/msg", \
     sel(50) using 1:($4*$2) with linespoints lc 1 dt 2 pt 5 title "no-op, 50 rcpt/msg", \
     sel(50) using 1:($5*$2) with linespoints lc 2 dt 2 pt 5 title "warm, 50 rcpt/msg", \
     sel(50) using 1:($6*$2) with linespoints lc 3 dt 2 pt 5 title "cache off, 50 rcpt/msg"
set ylabel "p99 RCPT reply latency (us)"
plot sel(1) using 1:7 with linespoints lc 1 pt 7 title "no-op, 1 rcpt/msg", \
     sel(1) using 1:8 with linespoints lc 2 pt 7 title "warm, 1 rcpt/msg", \
     sel(1) using 1:9 with linespoints lc 3 pt 7 title "cache off, 1 rcpt/msg", \
     sel(50) using 1:7 with linespoints lc 1 dt 2 pt 5 title "no-op, 50 rcpt/msg", \
     sel(50) using 1:8 with linespoints lc 2 dt 2 pt 5 title "warm, 50 rcpt/msg", \
     sel(50) using 1:9 with linespoints lc 3 dt 2 pt 5 title "cache off, 50 rcpt/msg"
unset multiplot
