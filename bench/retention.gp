# The chart of bench/retention.sh: database file and WAL size, and executions
# held, over a long run under a 1-minute retention. Run in bench/results/retention.
set terminal pngcairo size 720,420 font "DejaVu Sans,10"
set grid
set key top left
set output "retention.png"
set title "Retention: a long W1 batch, finished executions kept 60 s"
set xlabel "seconds"
set ylabel "MB"
set y2label "executions"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot "retention.dat" using 1:($2/1e6) with lines lw 2 lc rgb "#1f77b4" title "syn.db", \
     "" using 1:($3/1e6) with lines lw 1 lc rgb "#2ca02c" title "syn.db-wal", \
     "" using 1:4 axes x1y2 with lines lw 1 dt 2 lc rgb "#d62728" title "executions held (right)", \
     "" using 1:6 axes x1y2 with lines lw 1 lc rgb "#ff7f0e" title "finished executions held (right)", \
     "" using 1:5 axes x1y2 with lines lw 1 dt 3 lc rgb "#888888" title "executions started (right)"
