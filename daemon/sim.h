/* daemon/sim.h: the in-memory swarm simulator behind `plora sim` and bench_sim.
 *
 * n gossip engines (proto/gossip.h), one per overlay vertex (graph/), joined
 * by in-memory links; a discrete-event loop delivers frames, ticks and the
 * answers to the engines' actions. Everything is a function of the config
 * (seed included): the same config gives the same report, bit for bit.
 *
 * Real: the engines, every frame they send (msgpack, decoded by the
 * receiver), the adapters' bytes (derived from the seed) and their SHA-256
 * ids, chunking and resume, votes, quorum, equivocation detection.
 * Simulated (the engine only sees actions and events, so it cannot tell):
 * node keys are 64 seed-derived bytes, a "signature" is sha256(pk || msg);
 * a receiver's temp file is not kept: the simulator checks that every
 * STORE_CHUNK carries the authentic bytes at the expected offset (the
 * sender serves them from one shared buffer per adapter), and
 * VERIFY_ADAPTER answers from that check; the gate accepts exactly the
 * adapters not published by a malicious publisher (malicious voters'
 * gates accept everything).
 * Link model: a frame of b bytes sent by node u at time t leaves u's
 * uplink after max(t, u's uplink busy-until) + b / bandwidth and arrives
 * `latency` later (FIFO per connection). Driver work (sign, verify, gate)
 * is instantaneous.
 *
 * Swarm metrics (the prototype's definitions, swarm/metrics.py, recomputed
 * at every round end from the presence matrix X[i][a] = 1 iff node i holds
 * adapter a whole and hashed in its store; n nodes, A adapters, k_a = sum_i
 * X[i][a], k_i = sum_a X[i][a], T = sum of all X; logs base 2, in bits):
 *   coverage          mean over a of p_a = k_a / n
 *   entropy_avg       mean over a of H2(p_a), H2(p) = -p log p - (1-p) log(1-p);
 *                     in [0, 1] bit, 0 when every adapter is everywhere
 *   mutual_information I(node; adapter) with (i, a) drawn uniformly from the
 *                     T held pairs: sum over held (i,a) of (1/T) log(T / (k_i k_a));
 *                     >= 0, log2 n for one distinct adapter per node, 0 at full
 *                     diffusion
 *   mi_delta          I_t - I_{t-1} (0 in round 1)
 *   agent_agent_mi    I(node; K) with node uniform and K = k_node its adapter
 *                     count: K is a function of the node, so I = H(K), the
 *                     entropy of the distribution of per-node counts (the
 *                     prototype's code takes p(a, k) = p(k)/n, which makes
 *                     every term log 1 = 0: it always reports 0; this is the
 *                     quantity its docstring names)
 *   cooccurrence_excess mean over adapter pairs a < b of p(a and b) - p_a p_b
 *                     (0 with one adapter); in [-1/4, 1/4]
 *   network_flow_rate mean of mi_delta over rounds 2..R (the prototype: mean
 *                     per-round change of I); negative as information spreads
 *   epidemic_threshold 1 / lambda_max(A) of the overlay (graph/predict.h)
 */
#ifndef PLORA_SIM_H
#define PLORA_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"

enum sim_mode { SIM_PLORAD = 0, SIM_FLOOD_JSON = 1 };

struct sim_faults {
    double drop;                /* probability a frame is lost. As on a TCP stream, the
                                   loss breaks the stream at that frame: frames sent
                                   before it still arrive, nothing after it does, the
                                   connection resets when the lost frame was due and is
                                   redialled */
    uint32_t part_lo, part_hi;  /* rounds [lo, hi] during which nodes < n/2 and >= n/2
                                   cannot reach each other; 0,0 = none */
    uint32_t mal_publishers;    /* each publishes one adapter the honest gates reject */
    uint32_t mal_voters;        /* their gates accept every adapter */
    uint32_t equivocators;      /* sign both verdicts on every adapter */
    uint32_t quorum;            /* distinct ACCEPT keys to commit; 0 = 1 */
    uint32_t crash;             /* nodes that crash once, at a random time of a random
                                   round in 1..max(2, max eccentricity), and restart 1..3
                                   rounds later at a round start: a fresh engine fed from
                                   their store (whole adapters with their gate verdict,
                                   partial ones resuming at the stored offset, the votes
                                   they signed); everything else (peers, received votes,
                                   transfers in flight) is lost */
    double churn;               /* per node and round >= 1: probability it is offline for
                                   that round (the prototype's temporal dropout): its
                                   connections reset at the round start, it neither sends
                                   nor receives, and it redials at the next round start it
                                   is online; process and store stay (engine kept) */
};

struct sim_config {
    struct graph_params graph;  /* topology, n, p|k,beta|m, seed (also the sim's seed) */
    uint32_t adapters;          /* good adapters published at random nodes, >= 1 */
    uint64_t adapter_bytes;     /* bytes of each, >= 1 */
    enum sim_mode mode;
    struct sim_faults faults;
    uint32_t latency_ms;        /* per hop; 0 = 20 */
    uint64_t bandwidth;         /* bytes/s per node uplink; 0 = 125,000,000 (1 Gbit/s) */
    uint32_t round_ms;          /* 0 = 1000 */
    uint32_t chunk_size;        /* 0 = 256 KiB */
    uint32_t max_rounds;        /* 0 = 200 */
};

struct sim_report {
    uint32_t n;
    size_t edges;
    uint32_t adapters;              /* good + malicious */
    uint32_t rounds;                /* rounds simulated */
    int64_t *rounds_to_coverage;    /* per adapter, -1 = not reached */
    uint32_t *eccentricity;         /* per adapter: its publisher's eccentricity */
    bool *bad;                      /* per adapter: published by a malicious publisher */
    double predicted_rounds;        /* graph/: C ln n / lambda2, C fitted per topology */
    double predicted_rounds_uncalibrated;   /* the same with C = 1 */
    double prediction_c;            /* the C used (graph_predict_c) */
    double lambda2;
    uint32_t *coverage_by_round;    /* [rounds]: nodes holding every adapter at round end */
    double duplicate_payload_factor;
    uint64_t payload_bytes, bytes_sent, messages;
    uint64_t messages_by_type[16];  /* indexed by enum msg_type (proto/msg.h) */
    uint64_t commits;               /* (node, adapter) commits at honest nodes */
    uint64_t wrongly_merged;        /* honest commits of a bad adapter */
    uint64_t equivocations_detected;/* EQUIVOCATION audits at honest nodes */
    int64_t equivocation_round;     /* first round one was detected, -1 none */
    uint64_t resets;                /* connections reset by drops */
    uint64_t crashes, restarts;     /* crash=K */
    uint64_t restored_whole;        /* adapters fed whole to restarted engines */
    uint64_t restored_partial;      /* partial transfers fed at their stored offset */
    uint64_t offline_node_rounds;   /* churn=P: sum over rounds of nodes offline */
    uint32_t equivocators;          /* E; pairs below are [E * adapters], e * adapters + a */
    uint32_t *equivocator_node;     /* [E] */
    int64_t *equiv_signed;          /* round equivocator e signed both verdicts on a (-1 never) */
    int64_t *equiv_seen;            /* first round by which each of e's two verdicts on a had
                                       been kept by some honest node (-1 never) */
    int64_t *equiv_detected;        /* first round an honest node audited EQUIVOCATION by e
                                       on a (-1 never); the target: detected - seen <= 2 */
    /* swarm metrics (sim.h "Swarm metrics"), [rounds] each, at round end */
    double *m_coverage, *m_entropy, *m_mi, *m_mi_delta, *m_aa_mi, *m_cooc;
    double network_flow_rate;       /* mean of m_mi_delta over rounds 2.. */
    double epidemic_threshold;      /* 1 / lambda_max(A) of the overlay */
    /* flood-json reference for the same overlay and adapters */
    uint64_t flood_bytes, flood_messages;
    uint32_t flood_rounds;
};

/* Parse "--faults" (comma-separated key=value, DESIGN.md). Returns 0, or -1
 * with err naming the key and the problem. */
int sim_faults_parse(const char *spec, struct sim_faults *f, char *err, size_t err_len);

/* Run the simulation. Returns 0 (*out is the caller's: sim_report_free),
 * -1 with err filled (bad parameter: err starts with the option name), or
 * -2 out of memory / internal failure (err says which). */
int sim_run(const struct sim_config *cfg, struct sim_report **out, char *err, size_t err_len);

void sim_report_free(struct sim_report *r);   /* NULL is fine */

/* Bytes the prototype's flood would move: each round every node sends each
 * adapter it holds to each neighbour as JSON + base64. Fills the flood_*
 * fields of r from the overlay g and the publishers. */
void sim_flood_json(const struct graph *g, const uint32_t *publisher, uint32_t adapters,
                    uint64_t adapter_bytes, struct sim_report *r);

#endif
