/* daemon/status.c: the /status document (daemon/status.h is the contract:
 * every member listed there, with its type, in that order). Built on the
 * loop thread from node.h's read accessors; jansson keeps insertion order,
 * so the output follows the contract's order too. */
#include "status.h"

#include <stdint.h>
#include <string.h>

#include "gate.h"
#include "hex.h"
#include "metrics.h"
#include "node.h"

/* Set key to a new value; returns false (and drops v) on NOMEM. */
static bool put(json_t *o, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(o, key, v) == 0;
}

static json_t *uint_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *id_list(const uint8_t (*ids)[32], size_t n)
{
    json_t *a = json_array();
    char hex[65];

    for (size_t i = 0; a != NULL && i < n; i++) {
        hex_encode(ids[i], 32, hex);
        if (json_array_append_new(a, json_string(hex)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *overlay_obj(const struct node_view *v)
{
    json_t *o = json_object();

    if (o == NULL || !put(o, "topology", json_string(v->topology)) ||
        !put(o, "seed", json_integer((json_int_t)v->seed)) ||
        !put(o, "degree", json_integer(v->degree)) ||
        !put(o, "neighbours", id_list(v->neighbours, v->n_neighbours))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *peers_arr(const struct node *n)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < node_n_peers(n); i++) {
        const struct node_peer_info *p = node_peer(n, i);
        json_t *o = p != NULL ? json_pack("{s:s, s:s, s:b}", "id", p->id, "addr", p->addr,
                                          "outbound", p->outbound) : NULL;
        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *adapter_obj(const struct node_adapter_info *x)
{
    static const char *const gate[] = { "reject", "pending", "accept" };
    json_t *o = json_object(), *reasons = json_array();
    bool ok = o != NULL && reasons != NULL;

    for (size_t i = 0; ok && i < x->n_reasons; i++)
        ok = json_array_append_new(reasons, json_string(x->reasons[i])) == 0;
    ok = ok && put(o, "id", json_string(x->id)) && put(o, "domain", json_string(x->domain)) &&
         put(o, "size", json_integer((json_int_t)x->size)) &&
         put(o, "stored", json_integer((json_int_t)x->stored)) &&
         put(o, "state", json_string(x->state)) &&
         put(o, "gate", json_string(gate[x->gate < 0 ? 0 : x->gate > 0 ? 2 : 1]));
    if (ok) {
        ok = put(o, "reasons", reasons);
        reasons = NULL;
    }
    ok = ok && put(o, "votes_accept", json_integer(x->votes_accept)) &&
         put(o, "votes_reject", json_integer(x->votes_reject)) &&
         put(o, "received_round", uint_or_null(x->received_round)) &&
         put(o, "transfer_ms", uint_or_null(x->transfer_ms));
    json_decref(reasons);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *adapters_arr(const struct node *n)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < node_n_adapters(n); i++) {
        json_t *o = adapter_obj(node_adapter(n, i));
        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *merge_obj(const struct node_merge_info *m)
{
    json_t *o = json_object(), *in = json_array();
    bool ok = o != NULL && in != NULL;

    for (size_t i = 0; ok && i < m->n_inputs; i++)
        ok = json_array_append_new(in, json_string(m->inputs[i])) == 0;
    ok = ok && put(o, "base_model", json_string(m->base_model)) &&
         put(o, "output", json_string(m->output));
    if (ok) {
        ok = put(o, "inputs", in);
        in = NULL;
    }
    ok = ok && put(o, "dir", json_string(m->dir)) &&
         put(o, "round", json_integer((json_int_t)m->round));
    json_decref(in);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *merged_arr(const struct node *n)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < node_n_merged(n); i++) {
        json_t *o = merge_obj(node_merged(n, i));
        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* {"accept": N, "reject": N, "reasons": {"<gate_reason_name>": count>0}} */
static json_t *verdicts_obj(const struct metrics *m)
{
    json_t *o = json_object(), *r = json_object();
    bool ok = o != NULL && r != NULL;

    for (unsigned i = 1; ok && i < METRICS_GATE_REASONS; i++)
        if (m->gate_reasons[i] > 0)
            ok = put(r, gate_reason_name((enum gate_reason_id)i),
                     json_integer((json_int_t)m->gate_reasons[i]));
    ok = ok && put(o, "accept", json_integer((json_int_t)m->gate_accept)) &&
         put(o, "reject", json_integer((json_int_t)m->gate_reject));
    if (ok) {
        ok = put(o, "reasons", r);
        r = NULL;
    }
    json_decref(r);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *audit_obj(const struct node_view *v)
{
    return json_pack("{s:s, s:I, s:I, s:s}", "path", v->audit_path,
                     "records", (json_int_t)v->audit_records, "acked", (json_int_t)v->audit_acked,
                     "head", v->audit_head);
}

static bool head_fields(json_t *o, const struct node_view *v)
{
    return put(o, "node", json_string(v->name)) && put(o, "id", json_string(v->id)) &&
           put(o, "pid", json_integer(v->pid)) && put(o, "version", json_string(NODE_VERSION)) &&
           put(o, "listen", json_string(v->listen)) && put(o, "http", json_string(v->http)) &&
           put(o, "uptime_ms", json_integer((json_int_t)v->uptime_ms)) &&
           put(o, "round", json_integer((json_int_t)v->round)) &&
           put(o, "state", json_string(v->state)) &&
           put(o, "members", json_integer((json_int_t)v->members)) &&
           put(o, "overlay", overlay_obj(v));
}

static bool tail_fields(json_t *o, const struct node *n, const struct node_view *v)
{
    const struct metrics *m = v->metrics;

    return put(o, "merges", json_integer((json_int_t)v->merges)) &&
           put(o, "merged", merged_arr(n)) &&
           put(o, "bytes_in", json_integer((json_int_t)m->bytes_in)) &&
           put(o, "bytes_out", json_integer((json_int_t)m->bytes_out)) &&
           put(o, "send_buffers", json_integer((json_int_t)m->send_buffers)) &&
           put(o, "frames_in", json_integer((json_int_t)m->frames_in)) &&
           put(o, "frames_out", json_integer((json_int_t)m->frames_out)) &&
           put(o, "gate_verdicts", verdicts_obj(m)) && put(o, "audit", audit_obj(v)) &&
           put(o, "strikes", json_integer((json_int_t)v->strikes)) &&
           put(o, "bans", json_integer((json_int_t)v->bans));
}

json_t *status_build(const struct node *n)
{
    struct node_view v;
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    node_view(n, &v);
    if (!head_fields(o, &v) || !put(o, "peers", peers_arr(n)) ||
        !put(o, "adapters", adapters_arr(n)) || !tail_fields(o, n, &v)) {
        json_decref(o);
        return NULL;
    }
    return o;
}
