#!/usr/bin/env python3
"""Markdown table of mean PSNR / RMSE per protocol from several `depth_interp eval` results.json files.

Usage: experiments/ablation_table.py NAME=path/results.json [NAME=...] [--method model]
Rows are the named runs, columns the protocols (mean over the evaluated frames, all valid pixels).
"""
import argparse
import json


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('runs', nargs='+', help='NAME=results.json')
    p.add_argument('--method', default='model')
    args = p.parse_args()
    rows, protocols = [], []
    for item in args.runs:
        name, _, path = item.partition('=')
        summary = json.load(open(path))['summary']
        for proto in summary:
            if proto not in protocols:
                protocols.append(proto)
        rows.append((name, summary))
    print('| run | ' + ' | '.join('%s PSNR / RMSE' % p for p in protocols) + ' |')
    print('|---' * (len(protocols) + 1) + '|')
    for name, summary in rows:
        cells = []
        for proto in protocols:
            m = summary.get(proto, {}).get(args.method, {}).get('all')
            cells.append('%.2f / %.3f' % (m['psnr'], m['rmse']) if m else '-')
        print('| %s | %s |' % (name, ' | '.join(cells)))


if __name__ == '__main__':
    main()
