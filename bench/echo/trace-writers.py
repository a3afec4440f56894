#!/usr/bin/env python3
"""Where did the echo writers' missed ticks go? Reads the text dump of an
execution trace of an echo run (TRACE=1 in bench/echo.sh or
bench/echo-ladder.sh) and prints:

- each writer's tick turns: from its timer firing (Waiting->Runnable after a
  wait in sshtraffic's engine.write select) to its next wait there, as
  percentiles; a turn over 100 ms is a missed tick;
- for the turns over 100 ms, how much of them the writer spent runnable
  (waiting for the processor) or blocked (by reason), and which goroutines
  (by entry function) ran meanwhile, plus GC ranges inside them;
- the gaps over 150 ms between two timer wake-ups of a writer (its timer
  fired late: a missed tick the turns do not show), and how much of them
  the process's processors were idle: an idle processor with a timer due
  means the kernel did not run the process's thread in time (the core was
  busy with other processes).

    go tool trace -d=parsed WORK/cdeload-300-1.trace | python3 bench/echo/trace-writers.py
"""
import bisect
import collections
import re
import sys

TRANSITION = re.compile(r'^M=\S+ P=\S+ G=\S+ StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"')
PROC = re.compile(r'^M=\S+ P=\S+ G=\S+ StateTransition Time=(\d+) ProcID=(\d+) (\w+)->(\w+)')
RANGE = re.compile(r'^M=\S+ P=\S+ G=(\S+) Range(Begin|End) Time=(\d+) .*Name="([^"]*)"')
LONG_NS = 100e6
GAP_NS = 150e6


def main():
    lines = sys.stdin.read().split('\n')
    entry = {}            # goroutine -> entry function (bottom frame)
    running_since = {}    # goroutine -> start of its current running segment
    segments = []         # (start, end, goroutine)
    writer = {}           # writer goroutine -> state of its current turn
    turns = []            # (woke, end, runnable ns, blocked ns by reason)
    ranges = collections.defaultdict(list)
    open_ranges = {}
    wakes = collections.defaultdict(list)  # writer -> timer wake-up times
    idle_since = {}                        # processor -> start of its idle time
    idle = []                              # (start, end) of idle processors
    i = 0
    while i < len(lines):
        r = RANGE.match(lines[i])
        if r:
            g, edge, t, name = r.group(1), r.group(2), int(r.group(3)), r.group(4)
            if edge == 'Begin':
                open_ranges[(g, name)] = t
            elif (g, name) in open_ranges:
                ranges[name].append((open_ranges.pop((g, name)), t))
            i += 1
            continue
        p = PROC.match(lines[i])
        if p:
            t, proc, frm, to = int(p.group(1)), p.group(2), p.group(3), p.group(4)
            if to == 'Idle':
                idle_since[proc] = t
            elif frm == 'Idle' and proc in idle_since:
                idle.append((idle_since.pop(proc), t))
            i += 1
            continue
        m = TRANSITION.match(lines[i])
        i += 1
        if not m:
            continue
        t, g, frm, to, reason = int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5)
        stack = []
        if i < len(lines) and lines[i].startswith('TransitionStack='):
            i += 1
            while i < len(lines) and lines[i].startswith('\t'):
                stack.append(lines[i])
                i += 1
        funcs = [s.strip().split(' @ ')[0] for s in stack if not s.startswith('\t\t')]
        if funcs and frm == 'Running':
            entry[g] = funcs[-1]
        if to == 'Running':
            running_since[g] = t
        elif frm == 'Running' and g in running_since:
            segments.append((running_since.pop(g), t, g))
        at_tick = any('sshtraffic.(*engine).write' in f for f in funcs) and funcs and funcs[0] == 'runtime.selectgo'
        w = writer.get(g)
        if frm == 'Running' and to == 'Waiting':
            if at_tick:
                if w and w['woke'] is not None:
                    turns.append((w['woke'], t, w['runnable'], w['blocked']))
                writer[g] = {'woke': None}
            elif w and w['woke'] is not None:
                w['block'] = (t, reason or '?')
        elif w is None:
            continue
        elif frm == 'Waiting' and to == 'Runnable':
            if w['woke'] is None:
                wakes[g].append(t)
                w.update(woke=t, runnable=0, blocked=collections.Counter(), ready=t, block=None)
            elif w.get('block'):
                start, why = w['block']
                w['blocked'][why] += t - start
                w['block'], w['ready'] = None, t
        elif w['woke'] is not None and frm == 'Running' and to == 'Runnable':
            w['ready'] = t
        elif w['woke'] is not None and frm == 'Runnable' and to == 'Running' and w.get('ready') is not None:
            w['runnable'] += t - w['ready']
            w['ready'] = None
    if not turns:
        print('no echo writer turns in this trace')
        return
    d = sorted(b - a for a, b, _, _ in turns)
    q = lambda p: d[min(len(d) - 1, int(p * len(d)))] / 1e6
    print(f'writer turns: {len(d)}; p50 {q(.5):.2f} ms, p99 {q(.99):.2f} ms, p99.9 {q(.999):.2f} ms, max {d[-1] / 1e6:.1f} ms')
    long = [x for x in turns if x[1] - x[0] > LONG_NS]
    print(f'turns over 100 ms (missed ticks): {len(long)}')
    if long:
        blocked = collections.Counter()
        for x in long:
            blocked.update(x[3])
        total = sum(b - a for a, b, _, _ in long)
        runnable = sum(x[2] for x in long)
        print(f'  summed over these turns: {total / 1e6:.0f} ms, of which runnable (waiting for the processor) {runnable / 1e6:.0f} ms, blocked '
              + (', '.join(f'{k} {v / 1e6:.0f} ms' for k, v in blocked.most_common(5)) or '0 ms'))
        report_inside([(a, b) for a, b, _, _ in long], segments, entry, ranges)
    gaps = [(a, b) for w in wakes.values() for a, b in zip(w, w[1:]) if b - a > GAP_NS]
    print(f'timer wake-ups more than 150 ms apart (late timers): {len(gaps)}')
    if gaps:
        union = merge(gaps)
        span = sum(b - a for a, b in union)
        print(f'  their wall time: {span / 1e6:.0f} ms, of which processors idle {sum(overlap(union, a, b) for a, b in idle) / 1e6:.0f} ms')
        report_inside(gaps, segments, entry, ranges)


def merge(intervals):
    union = []
    for a, b in sorted(intervals):
        if union and a <= union[-1][1]:
            union[-1][1] = max(union[-1][1], b)
        else:
            union.append([a, b])
    return union


def overlap(union, a, b):
    starts = [u[0] for u in union]
    tot, k = 0, max(0, bisect.bisect_right(starts, a) - 1)
    while k < len(union) and union[k][0] < b:
        tot += max(0, min(b, union[k][1]) - max(a, union[k][0]))
        k += 1
    return tot


def report_inside(intervals, segments, entry, ranges):
    union = merge(intervals)
    ran = collections.Counter()
    for a, b, g in segments:
        o = overlap(union, a, b)
        if o:
            ran[entry.get(g, '?')] += o
    print(f'  meanwhile ({sum(b - a for a, b in union) / 1e6:.0f} ms of wall time) goroutines ran {sum(ran.values()) / 1e6:.0f} ms:')
    for k, v in ran.most_common(10):
        print(f'    {v / 1e6:8.1f} ms  {k}')
    for name, rs in sorted(ranges.items()):
        o = sum(overlap(union, a, b) for a, b in rs)
        if o and ('GC' in name or 'stop-the-world' in name):
            print(f'    {o / 1e6:8.1f} ms  in range "{name}"')

if __name__ == '__main__':
    main()
