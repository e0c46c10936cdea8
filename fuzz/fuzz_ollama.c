/*
 * fuzz_ollama.c - reading Ollama /api/chat answers (mg_ollama_read_answer,
 * provider/ollama.c): the JSON body, and the stream of JSON lines whose
 * last says "done", with tool calls given whole (arguments as an object)
 * and thinking text.
 *
 * Input: byte 0 odd for a stream (and the seed of its cuts), even for a
 * body; the rest is the answer. Properties: those of provider.h, with ids
 * sane and unique (tool_calls.h promises it), each call shown with exactly
 * its arguments, and the content pieces adding up to the reply's text.
 */
#include "provider.h"

#include "provider/ollama.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_provider_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_provider p = {
        .read = mg_ollama_read_answer, .sane_ids = 1, .content_pieces = 1, .args_pieces = 1};
    return fz_provider_one(&p, data, size);
}
