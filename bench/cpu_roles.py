#!/usr/bin/env python3
"""CPU samples of a bfill run by pipeline role and, within each, by leaf function.

    perf record -F 2999 --call-graph dwarf,16384 -m 8192 -o cpu.data -- \\
        bin/bfill add-index --store S --table sbtest1 --name b --columns c --mem 512M --workers 2
    perf script -i cpu.data -F tid,ip,sym > cpu.txt
    bench/cpu_roles.py cpu.txt [LEAVES]

A sample's role is the first of these functions on its stack: reader_main (table scan and
row decoding), writer_main (index encoding, sort buffers, sorting and run writes),
export_thread (the import's merges and target file writes), run_sink, importer_main,
handle_fildes_io (glibc's asynchronous I/O helpers); anything else is "other".
Percentages are of all samples.
"""
import collections
import sys

ROLES = ('export_thread', 'writer_main', 'reader_main', 'run_sink', 'importer_main',
         'handle_fildes_io')


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit('usage: bench/cpu_roles.py PERF_SCRIPT_OUTPUT [LEAVES]')
    leaves = int(sys.argv[2]) if len(sys.argv) == 3 else 8
    roles = collections.Counter()
    leaf = collections.defaultdict(collections.Counter)
    frames = []

    def sample_done():
        if not frames:
            return
        role = next((r for r in ROLES if r in frames), 'other')
        roles[role] += 1
        leaf[role][frames[0]] += 1

    try:
        f = open(sys.argv[1], encoding='utf-8', errors='replace')
    except OSError as e:
        sys.exit(f'bench/cpu_roles.py: {e.strerror}: {sys.argv[1]}')
    with f:
        for line in f:
            parts = line.split()
            if not parts:
                sample_done()
                frames = []
            elif len(parts) >= 2:
                frames.append(parts[1].split('+')[0])
    sample_done()
    total = sum(roles.values())
    if not total:
        sys.exit('bench/cpu_roles.py: no samples with stacks in ' + sys.argv[1])
    for role, n in roles.most_common():
        print(f'{role}: {100 * n / total:.1f}%')
        for name, k in leaf[role].most_common(leaves):
            print(f'    {100 * k / total:5.1f}% {name}')


if __name__ == '__main__':
    main()
