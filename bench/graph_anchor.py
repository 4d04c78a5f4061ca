#!/usr/bin/python3
"""bench/graph_anchor.py: the networkx anchor of bench_graph.

usage: graph_anchor.py TOPO N PARAM SEED EDGEFILE
  TOPO er|ws|ba; PARAM: er mean degree, ws k (beta 0.1), ba m.
Times networkx's own generator for the same (n, parameters) (ER: plus joining
components to the largest, as plorad's --connect does), then nx.algebraic_connectivity (default method
tracemin_pcg, tol 1e-8) on plorad's own graph read from EDGEFILE (not timed),
so that the two lambda2 values can be compared. Prints CPU seconds
(time.process_time) of each part and the wall time of both:
  gen_s=<s> l2_s=<s> lambda2=<value> wall_s=<s>
Run single-threaded (OPENBLAS_NUM_THREADS=1) by bench_graph, under a timeout.
"""
import sys
import time
import warnings

import networkx as nx


def generate(topo, n, param, seed):
    if topo == "er":
        g = nx.fast_gnp_random_graph(n, param / (n - 1), seed=seed)
        comps = sorted(nx.connected_components(g), key=min)
        giant = max(comps, key=len)
        gv = sorted(giant)
        others = [min(c) for c in comps if c is not giant]
        g.add_edges_from((u, gv[i % len(gv)]) for i, u in enumerate(others))
        return g
    if topo == "ws":
        return nx.watts_strogatz_graph(n, int(param), 0.1, seed=seed)
    return nx.barabasi_albert_graph(n, int(param), seed=seed)


def main():
    warnings.simplefilter("ignore")
    topo, n, param, seed, edgefile = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    w0, t0 = time.perf_counter(), time.process_time()
    generate(topo, n, param, seed)
    gen_s, gen_w = time.process_time() - t0, time.perf_counter() - w0
    g = nx.Graph()
    g.add_nodes_from(range(n))
    with open(edgefile) as f:
        g.add_edges_from(tuple(map(int, line.split())) for line in f)
    w0, t0 = time.perf_counter(), time.process_time()
    l2 = nx.algebraic_connectivity(g)
    l2_s, l2_w = time.process_time() - t0, time.perf_counter() - w0
    print(f"gen_s={gen_s:.6f} l2_s={l2_s:.6f} lambda2={l2:.17g} wall_s={gen_w + l2_w:.6f}", flush=True)


if __name__ == "__main__":
    main()
