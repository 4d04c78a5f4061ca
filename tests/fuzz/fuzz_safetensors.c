/* tests/fuzz/fuzz_safetensors.c: untrusted safetensors bytes. A file that
 * validates must hand out only in-bounds tensors (every element of every
 * tensor is read, so ASan sees any overrun), and then goes through LoRA
 * pairing with a permissive config (rank 1..4 via rank_pattern, any target). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"

static const char cfg_text[] =
    "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,\"use_rslora\":true,"
    "\"target_modules\":\"all-linear\",\"rank_pattern\":{\"q\":1,\"v\":4}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct safetensors *st = NULL;
    struct peft_config *cfg = NULL;
    struct adapter *ad = NULL;
    const uint8_t *bytes;
    size_t len;
    double x[64];

    if (safetensors_parse(&st, data, size, NULL) != 0)
        return 0;
    bytes = safetensors_bytes(st, &len);
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct safetensors_tensor *t = safetensors_at(st, i);
        if (t->data < bytes || t->nbytes > len || t->data + t->nbytes > bytes + len ||
            safetensors_find(st, t->name) != t)
            abort();
        for (uint64_t k = 0; k < t->nelem; k += 64) {
            size_t n = (size_t)(t->nelem - k < 64 ? t->nelem - k : 64);
            if (safetensors_tensor_range_f64(t, k, x, n) != 0)
                abort();
        }
    }
    if (peft_config_parse(&cfg, cfg_text, strlen(cfg_text), NULL) != 0)
        abort();
    if (adapter_build(&ad, cfg, st, NULL) == 0) {  /* takes cfg and st */
        for (size_t i = 0; i < adapter_module_count(ad); i++) {
            double f;
            const struct adapter_module *m = adapter_module_at(ad, i);
            if (m->r * m->in > 4096 || m->out * m->r > 4096)
                continue;  /* keep each run fast */
            if (adapter_module_frob(m, &f) != 0 || !(f >= 0 || isnan(f)))
                abort();
        }
        adapter_free(ad);
    }
    return 0;
}
