/* proto/msg.h: the protocol's messages and their msgpack codecs.
 *
 * Every frame body is one msgpack map {t: type, v: PROTO_VERSION, ...} whose
 * fields, types and limits are listed in proto/PROTOCOL.md; this header is
 * the C view of that table. Ids (adapter ids, node key ids) travel as 32 raw
 * bytes (bin 32): the SHA-256 of the adapter file, or of the node's public
 * key in SubjectPublicKeyInfo DER; their text form elsewhere is 64 lowercase
 * hex digits (crypto/sha256.h sha256_hex).
 *
 * struct msg is a plain tagged union (a value, not an object): fill one to
 * encode it; msg_decode returns one that the caller frees with msg_free.
 * Decoded text fields (domain, addr, text) are copied, checked and
 * NUL-terminated; byte fields (struct msg_bytes: pk, sig, vote body, chunk
 * data, config, manifest) point INTO the decoded body, zero-copy: keep the
 * body alive while the message is used.
 */
#ifndef PLORA_MSG_H
#define PLORA_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpwalk.h"
#include "proto_err.h"

#define PROTO_VERSION 1

#define MSG_ID_LEN 32u                      /* raw SHA-256 */
#define MSG_NONCE_LEN 32u                   /* HELLO nonce, from the driver's CSPRNG */
#define MSG_DOMAIN_MAX 64u                  /* [a-z0-9][a-z0-9._-]{0,63} */
#define MSG_ADDR_MAX 255u                   /* "host:port" or "[v6]:port" */
#define MSG_TEXT_MAX 200u                   /* BYE text */
#define MSG_PK_MAX 2048u                    /* SPKI DER (RSA-4096 is 550 bytes) */
#define MSG_SIG_MAX 1024u                   /* RSA-3072 PSS is 384, Ed25519 64 */
#define MSG_VOTE_MAX 4096u                  /* canonical vote bytes (crypto/vote.h) */
#define MSG_META_MAX (256u << 10)           /* adapter_config.json or manifest bytes */
#define MSG_CHUNK_MAX (1u << 20)            /* CHUNK data bytes */
#define MSG_LIST_MAX 4096u                  /* entries in ads, ids, vids, peers */
#define MSG_SIZE_MAX ((uint64_t)1 << 40)    /* adapter bytes; offsets stay below */
#define MSG_FIELDS_MAX 32u                  /* keys in a frame's top-level map */
#define MSG_VTAG_LEN 16u                    /* a vote's tag in WANT.vh (msg_vote_tag) */
#define MSG_VHAVE_MAX 256u                  /* tags in one WANT.vh entry */

/* The tag, both nonces and both ids a HELLO_ACK signature covers; see
 * msg_auth_input. */
#define MSG_AUTH_TAG "PLORAD|HELLO|v1|"
#define MSG_AUTH_INPUT_LEN (16u + 2 * MSG_NONCE_LEN + 2 * MSG_ID_LEN)

enum msg_type {
    MSG_HELLO = 1,
    MSG_HELLO_ACK = 2,
    MSG_DIGEST = 3,
    MSG_WANT = 4,
    MSG_OFFER = 5,
    MSG_MANIFEST = 6,
    MSG_CHUNK = 7,
    MSG_VOTE = 8,
    MSG_PEERS = 9,
    MSG_BYE = 10,
};
#define MSG_TYPE_MAX 10

/* A borrowed byte range (decode: inside the body; encode: the caller's). */
struct msg_bytes {
    const uint8_t *p;
    size_t n;
};

typedef uint8_t msg_id[MSG_ID_LEN];

struct msg_hello {
    msg_id id;                        /* sha256(pk) */
    uint8_t nonce[MSG_NONCE_LEN];
    char addr[MSG_ADDR_MAX + 1];      /* listen address, "" = does not listen */
    struct msg_bytes pk;              /* SPKI DER, 1..MSG_PK_MAX */
};

struct msg_hello_ack {
    struct msg_bytes sig;             /* over msg_auth_input(), 1..MSG_SIG_MAX */
};

struct msg_ad {                       /* one DIGEST entry: an adapter I hold */
    msg_id id;
    char domain[MSG_DOMAIN_MAX + 1];
    uint64_t size;                    /* bytes, 1..MSG_SIZE_MAX */
    uint32_t acc, rej;                /* distinct ACCEPT / REJECT votes I hold */
};

struct msg_digest {
    uint64_t round;                   /* sender's round counter (diagnostic) */
    msg_id members;                   /* hash of the sender's membership list */
    size_t n_ads;                     /* 0..MSG_LIST_MAX */
    struct msg_ad *ads;
    uint64_t *vsets;                  /* optional key "vs": NULL (absent) or n_ads entries,
                                         vsets[i] = the sum mod 2^64 of msg_vote_term over
                                         the votes the sender holds for ads[i]; written
                                         only when n_ads > 0 (decoded: NULL then) */
};

struct msg_want_item {
    msg_id id;
    uint64_t from;                    /* resume: bytes already stored, < MSG_SIZE_MAX */
};

struct msg_want {
    size_t n_ids;                     /* adapters wanted, 0..MSG_LIST_MAX */
    struct msg_want_item *ids;
    size_t n_vids;                    /* adapters whose votes are wanted */
    msg_id *vids;
    struct msg_bytes *vhave;          /* optional key "vh": NULL (absent: send every vote) or
                                         n_vids entries, vhave[i] = the votes the sender
                                         already holds for vids[i], as msg_vote_tag tags,
                                         strictly ascending, 0..MSG_VHAVE_MAX of them;
                                         written only when n_vids > 0 (decoded: NULL then) */
};

struct msg_offer {
    size_t n_ids;                     /* 1..MSG_LIST_MAX */
    msg_id *ids;
};

struct msg_manifest {
    msg_id id;
    char domain[MSG_DOMAIN_MAX + 1];
    uint64_t size;                    /* adapter_model.safetensors bytes */
    struct msg_bytes config;          /* adapter_config.json, 0..MSG_META_MAX */
    struct msg_bytes manifest;        /* manifest (plora.yml), 0..MSG_META_MAX */
};

struct msg_chunk {
    msg_id id;
    uint64_t off;                     /* byte offset in the adapter file */
    struct msg_bytes data;            /* 1..MSG_CHUNK_MAX, off + n <= MSG_SIZE_MAX */
};

struct msg_vote {
    msg_id id;                        /* the adapter voted on */
    msg_id by;                        /* signer's key id */
    struct msg_bytes body;            /* canonical vote, opaque here, 1..MSG_VOTE_MAX */
    struct msg_bytes sig;             /* 1..MSG_SIG_MAX */
};

struct msg_peer {
    msg_id id;
    char addr[MSG_ADDR_MAX + 1];      /* non-empty */
};

struct msg_peers {
    size_t n;                         /* 0..MSG_LIST_MAX */
    struct msg_peer *peers;
};

struct msg_bye {
    int32_t code;                     /* 0 = normal close, else a PROTO_E_* */
    char text[MSG_TEXT_MAX + 1];      /* printable ASCII */
};

struct msg {
    enum msg_type type;
    union {
        struct msg_hello hello;
        struct msg_hello_ack hello_ack;
        struct msg_digest digest;
        struct msg_want want;
        struct msg_offer offer;
        struct msg_manifest manifest;
        struct msg_chunk chunk;
        struct msg_vote vote;
        struct msg_peers peers;
        struct msg_bye bye;
    } u;
};

/* Walker caps before and after authentication (PROTOCOL.md "Limits"). */
extern const struct mpwalk_limits msg_limits_preauth;
extern const struct mpwalk_limits msg_limits_authed;

/* Decode one frame body (without its 4-byte prefix) under `lim` (NULL =
 * msg_limits_authed). The body is first checked by mpwalk_check, then
 * unpacked by msgpack-c, then every field of its type is checked.
 * On 0, *out is the caller's (msg_free) and borrows from `body`; on error
 * *out is NULL. Returns 0, PROTO_E_NOMEM, PROTO_E_ARG, any mpwalk_check code,
 * or PROTO_E_NOT_MAP, _VERSION (checked before the type), _TYPE,
 * _FIELD_MISSING, _FIELD_TYPE, _FIELD_VALUE, _DUP_FIELD, _LIMIT (more than
 * MSG_FIELDS_MAX keys or MSG_LIST_MAX entries); d names the field. */
__attribute__((warn_unused_result))
int msg_decode(const uint8_t *body, size_t n, const struct mpwalk_limits *lim,
               struct msg **out, struct proto_diag *d);

/* Free a decoded message (NULL is fine). Never pass an encoder's struct. */
void msg_free(struct msg *m);

/* Encode `m` as one whole frame (4-byte prefix + body) in a new buffer:
 * *out (malloc'd, the caller frees it) and *out_len. Returns 0,
 * PROTO_E_NOMEM, or PROTO_E_ARG when a field breaks the limits msg_decode
 * enforces (d names it), so that what we send always decodes. */
__attribute__((warn_unused_result))
int msg_encode(const struct msg *m, uint8_t **out, size_t *out_len, struct proto_diag *d);

/* Largest prefix msg_chunk_head writes. */
#define MSG_CHUNK_HEAD_MAX 80u

/* Zero-copy send of a CHUNK: write the frame prefix and every byte of the
 * body up to the data (the bin header included) into out[0..cap); the
 * caller sends those *n bytes and then data_len bytes of adapter data: the
 * two together are byte-identical to msg_encode's frame. Returns 0 or
 * PROTO_E_ARG (cap < MSG_CHUNK_HEAD_MAX, data_len outside 1..MSG_CHUNK_MAX,
 * off + data_len over MSG_SIZE_MAX). */
int msg_chunk_head(uint8_t *out, size_t cap, size_t *n, const msg_id id, uint64_t off,
                   size_t data_len);

/* Bytes a HELLO_ACK signer signs, for verifier V and signer S:
 * MSG_AUTH_TAG || V's nonce || S's nonce || V's id || S's id. Binding both
 * nonces and both ids stops replay and reflection of a signature. */
void msg_auth_input(uint8_t out[MSG_AUTH_INPUT_LEN], const uint8_t v_nonce[MSG_NONCE_LEN],
                    const uint8_t s_nonce[MSG_NONCE_LEN], const msg_id v_id, const msg_id s_id);

/* A vote's tag, its name in WANT.vh: the signer key id's first 15 bytes,
 * then the verdict (1 ACCEPT, 0 REJECT). 120 bits of key id make a
 * colliding key (which would hide another key's vote) infeasible to grind. */
void msg_vote_tag(uint8_t out[MSG_VTAG_LEN], const msg_id by, bool accept);

/* A vote's term in DIGEST.vs: a 64-bit mix of the signer key id's first 8
 * bytes (big-endian) and the verdict. Summing terms is order-free, so a
 * node keeps its sum up to date one vote at a time; two nodes whose sums
 * differ hold different vote sets. */
uint64_t msg_vote_term(const msg_id by, bool accept);

/* Field checks shared by the decoder and the encoder (n bytes, no NUL needed). */
bool msg_domain_ok(const char *s, size_t n);   /* [a-z0-9][a-z0-9._-]{0,63} */
bool msg_addr_ok(const char *s, size_t n);     /* host:port, [v6]:port; 1..65535 */
bool msg_text_ok(const char *s, size_t n);     /* printable ASCII, <= MSG_TEXT_MAX */

/* "HELLO"-style name of a type; "unknown" otherwise. */
const char *msg_type_name(int type);

#endif
