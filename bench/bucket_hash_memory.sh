#!/bin/sh
# The memory of one bucket hash (docs/REDIS_SCHEMA.md, "Cost per record"): the 51 counters of a
# busy hour other than the pairs of dominant feelings (400 interactions, realistic magnitudes),
# plus N pair fields f_<start>_<end>, under hash-max-listpack-entries 128 (the default) and 160.
# Starts a throwaway redis-server on PORT (default 6399) and prints MEMORY USAGE and the
# encoding of each. Usage: bench/bucket_hash_memory.sh
set -eu
PORT=${PORT:-6399}
dir=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid; rm -rf "$dir"' EXIT
R="redis-cli -p $PORT"
i=0
until $R ping >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 50 ] || { cat "$dir/log"; exit 1; }; sleep 0.1
done
base="n 400 felt 360 start_sum -54210 end_sum 61873 change_sum 116083 start_sq 98231554
end_sq 87123409 change_sq 201873312 start_end -21873441 improved 231 worsened 97 recovered 88
soured 21 start_neg 140 start_neu 120 start_pos 100 end_neg 70 end_neu 150 end_pos 140 t_nn 52
t_nu 50 t_np 38 t_un 12 t_uu 70 t_up 38 t_pn 6 t_pu 30 t_pp 64 handle_sum 187234123
handle_sq 121873 wait_sum 12873412 wait_sq 9873 transfers_sum 211 resolved 280
resolved_known 350 empathy_sum 231873 empathy_sq 152873123 change_empathy 73412873
change_handle 98123 s 120 promoters 60 passives 35 detractors 25 ltr_sum 912 ltr_sq 7812
comment_n 80 comment_sum 12873 comment_sq 9812873 change_neg 81873 change_neu 21873
change_pos 12337"
kinds="anger frustration confusion anxiety sadness gratitude relief satisfaction delight none"
pairs=""
for a in $kinds; do for b in $kinds; do pairs="$pairs f_${a}_$b"; done; done
$R info server | grep '^redis_version' | tr -d '\r'
for entries in 128 160; do
  $R config set hash-max-listpack-entries $entries >/dev/null
  for n in 0 30 77 78 90 100; do
    $R del b >/dev/null
    # shellcheck disable=SC2086 # the field list is meant to be split
    $R hset b $base >/dev/null
    i=0
    args=""
    for f in $pairs; do
      [ $i -lt $n ] || break
      i=$((i + 1))
      args="$args $f $((i % 17 + 1))"
    done
    # shellcheck disable=SC2086
    [ -z "$args" ] || $R hset b $args >/dev/null
    printf 'hash-max-listpack-entries %s: %3s fields (%3s pairs): %6s bytes, %s\n' "$entries" \
      "$($R hlen b)" "$n" "$($R memory usage b samples 0)" "$($R object encoding b)"
  done
done
