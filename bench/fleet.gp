# The chart of bench/fleet.sh: a fleet of 10 to 1,000 simulated workers x 4 slots
# against one broker. Run in bench/results/fleet; every <tag>.dat there is a line
# (before.dat and after.dat for an A/B, fleet.dat for one build).
set terminal pngcairo size 900,640 font "DejaVu Sans,10"
set output "fleet.png"
set grid
set key top left
set logscale x 10
set xrange [8:1250]
set xtics (10, 100, 300, 1000)
files = system("ls *.dat")
set multiplot layout 2,2 title "A thousand workers: one broker, N simulated workers x 4 slots"
set title "dispatch p99 (phase ready -> ASSIGN sent), ~80 % busy"
set ylabel "ms"
set logscale y 10
plot for [f in files] f using 1:4 with linespoints lw 2 title f
set title "dispatch p50"
plot for [f in files] f using 1:3 with linespoints lw 2 title f
unset logscale y
set title "broker CPU with the fleet idle (heartbeats, liveness)"
set ylabel "% of a core"
set yrange [0:*]
plot for [f in files] f using 1:5 with linespoints lw 2 title f
set title "broker kill -9: every worker back, its attempts re-adopted"
set ylabel "s"
plot for [f in files] f using 1:($6 >= 0 ? $6 : 1/0) with linespoints lw 2 title f
unset multiplot
