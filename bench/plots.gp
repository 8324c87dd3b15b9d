# Charts for docs/benchmarks.md, from the data files bench/report.py writes.
# Run in bench/results: gnuplot ../plots.gp
set terminal pngcairo size 720,420 font "DejaVu Sans,10"
set grid
set key top left

# W2: executions/s against slots, with the ideal slots / 0.15 s.
set output "w2_throughput.png"
set title "W2: 200 executions of 3 x 50 ms phases (median, min-max bars)"
set xlabel "slots in total"
set ylabel "executions/s"
set logscale x 2
set xrange [3:80]
set xtics (4, 8, 16, 64)
plot "w2.dat" using 1:2 with linespoints dt 2 lc rgb "#888888" title "ideal (slots / 0.15 s)", \
     "" using 1:3:4:5 with yerrorlines lw 2 lc rgb "#1f77b4" title "syn", \
     "" using 1:12:13:14 with yerrorlines lw 2 dt 3 lc rgb "#9467bd" title "syn --prefetch", \
     "" using 1:6:7:8 with yerrorlines lw 2 lc rgb "#2ca02c" title "Celery (gevent)", \
     "" using 1:9:10:11 with yerrorlines lw 2 lc rgb "#d62728" title "BullMQ"
unset logscale x
unset xrange
set xtics autofreq

# W1: latency CDF of the median run, peers' p50/p99 as points.
set output "w1_latency_cdf.png"
set title "W1: submit -> complete latency, 2,000 executions (median run)"
set xlabel "latency, ms (log)"
set ylabel "fraction of executions"
set logscale x 10
set xrange [1:40000]
set yrange [0:1.02]
set key bottom right
plot "cdf_syn16.dat" using 1:2 with lines lw 2 lc rgb "#1f77b4" title "syn, 16 submits in flight", \
     "cdf_syn16pf.dat" using 1:2 with lines lw 2 dt 3 lc rgb "#9467bd" title "syn --prefetch, 16 submits in flight", \
     "cdf_syn1.dat" using 1:2 with lines lw 2 dt 2 lc rgb "#1f77b4" title "syn, 1 at a time", \
     "cdf_peers.dat" using 2:(0.5) with points pt 7 lc rgb "black" title "peers' p50 (dots) and p99 (squares)", \
     "" using 3:(0.99) with points pt 5 lc rgb "black" notitle, \
     "" using 2:(0.45 - 0.07*$0):(sprintf("%s p50", stringcolumn(1))) with labels left offset 0.5,0 notitle, \
     "" using 3:(0.92 - 0.07*$0):(sprintf("%s p99", stringcolumn(1))) with labels left offset 0.5,0 notitle
unset logscale x
set xrange [*:*]
set yrange [*:*]
set key top left

# Scaling: executions/s and the broker's CPU against worker processes. Left
# out when scaling.dat has no data (BENCH_SKIP=scaling): gnuplot stops at a
# plot without a single point, and the charts after it would be missing.
scaling_rows = int(system("cat scaling.dat 2>/dev/null | grep -cv '^#'"))
if (scaling_rows > 0) {
set output "w1_scaling.png"
set title "W1 by worker processes (16 slots each, 16 submits in flight)"
set xlabel "worker processes"
set ylabel "executions/s"
set y2label "broker CPU %"
set y2range [0:110]
set yrange [0:*]
set ytics nomirror
set y2tics
set logscale x 2
set xrange [0.9:9]
set xtics (1, 2, 4, 8)
set key bottom right
plot "scaling.dat" using 1:2 with linespoints lw 2 lc rgb "#1f77b4" title "executions/s", \
     "" using 1:3 axes x1y2 with linespoints lw 2 dt 2 lc rgb "#ff7f0e" title "broker CPU %"
}

# W2 again as the percentage of the ideal rate.
set output "w2_pct_of_ideal.png"
set title "W2: executions/s as % of the ideal slots / 0.15 s (median, min-max bars)"
set xlabel "slots in total"
set ylabel "% of ideal"
unset y2label
unset y2tics
set ytics mirror
set key bottom left
set logscale x 2
set xrange [3:80]
set yrange [0:105]
set xtics (4, 8, 16, 64)
set key bottom left
plot "w2.dat" using 1:($3/$2*100):($4/$2*100):($5/$2*100) with yerrorlines lw 2 lc rgb "#1f77b4" title "syn", \
     "" using 1:($12/$2*100):($13/$2*100):($14/$2*100) with yerrorlines lw 2 dt 3 lc rgb "#9467bd" title "syn --prefetch", \
     "" using 1:($6/$2*100):($7/$2*100):($8/$2*100) with yerrorlines lw 2 lc rgb "#2ca02c" title "Celery (gevent)", \
     "" using 1:($9/$2*100):($10/$2*100):($11/$2*100) with yerrorlines lw 2 lc rgb "#d62728" title "BullMQ"
