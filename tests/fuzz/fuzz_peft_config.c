/* tests/fuzz/fuzz_peft_config.c: untrusted adapter_config.json bytes. A config
 * that parses must answer every query (patterns compiled, ranks >= 1). */
#include <stdint.h>
#include <stdlib.h>

#include "peft_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {
        "model.layers.0.self_attn.q_proj", "distilbert.transformer.layer.1.attention.v_lin",
        "transformer.h.11.attn.c_attn", "q", "",
    };
    struct peft_config *c = NULL;

    if (peft_config_parse(&c, (const char *)data, size, NULL) != 0)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        unsigned r = peft_config_module_rank(c, names[i]);
        if (r < 1)
            abort();
        (void)peft_config_module_alpha(c, names[i]);
        (void)peft_config_scaling(c, names[i], r);
        (void)peft_config_targets(c, names[i]);
    }
    peft_config_free(c);
    return 0;
}
