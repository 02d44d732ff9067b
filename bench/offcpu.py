#!/usr/bin/env python3
"""Where a bfill run's threads wait: off-CPU seconds per thread, state and stack.

    perf record -e sched:sched_switch --call-graph dwarf,8192 -m 4096 -o sw.data -- \\
        bin/bfill add-index --store S --table sbtest1 --name b --columns c --mem 512M --workers 2
    perf script -i sw.data > sw.txt
    bench/offcpu.py sw.txt [LINES]

Each switch away from a thread starts its wait (S: asleep, D: in uninterruptible I/O,
R: preempted); the switch back to it ends the wait. Waits are summed by thread, state and
the first user-space frames of the stack the thread left from (kernel frames and the
futex/pthread plumbing are left out, so a wait reads as the bfill function that waited).
"""
import collections
import re
import sys

HEADER = re.compile(r'^\S.*?\s(\d+)\s+\[\d+\]\s+([\d.]+): sched:sched_switch: '
                    r'.*prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)')
PLUMBING = ('__', 'schedule', 'entry_', 'do_syscall', 'x64', 'syscall', 'futex', 'do_futex',
            'pthread_cond', '___pthread', 'lll_', 'start_thread', 'clone')


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit('usage: bench/offcpu.py PERF_SCRIPT_OUTPUT [LINES]')
    lines = int(sys.argv[2]) if len(sys.argv) == 3 else 30
    waiting = {}                      # tid -> (since, state, stack)
    total = collections.Counter()     # (tid, state, stack) -> seconds
    event = None

    def settle(ev):
        if not ev:
            return
        t, prev, state, nxt, frames = ev
        if nxt in waiting:
            since, st, stack = waiting.pop(nxt)
            total[(nxt, st, stack)] += t - since
        user = [name for name, kernel in frames if not kernel and not name.startswith(PLUMBING)]
        waiting[prev] = (t, state, ' < '.join(user[:5]) or '(kernel)')

    try:
        f = open(sys.argv[1], encoding='utf-8', errors='replace')
    except OSError as e:
        sys.exit(f'bench/offcpu.py: {e.strerror}: {sys.argv[1]}')
    with f:
        for line in f:
            m = HEADER.match(line)
            if m:
                settle(event)
                event = (float(m.group(2)), m.group(3), m.group(4), m.group(5), [])
                continue
            parts = line.split(None, 2)
            if event and len(parts) >= 2:
                event[4].append((parts[1].split('+')[0], 'kernel.kallsyms' in line))
    settle(event)
    if not total:
        sys.exit('bench/offcpu.py: no sched_switch events with stacks in ' + sys.argv[1])
    for (tid, state, stack), secs in total.most_common(lines):
        print(f'{secs:7.3f} s  tid {tid:>7}  {state:<2} {stack[:160]}')


if __name__ == '__main__':
    main()
