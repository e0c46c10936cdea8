/*
 * fuzz_openai.c - reading OpenAI chat-completions answers
 * (mg_openai_read_answer, provider/openai.c): the JSON body, and the
 * stream of chat.completion.chunk events with its tool-call pieces matched
 * by index or id, including tool-call extraction (tool_calls.c) and the
 * argument repair the functions layer applies.
 *
 * Input: byte 0 odd for a stream (and the seed of its cuts), even for a
 * body; the rest is the answer. Properties: those of provider.h, with ids
 * sane and unique (tool_calls.h promises it), a call's pieces adding up to
 * its arguments exactly, and the content pieces to the reply's text.
 */
#include "provider.h"

#include "provider/openai.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_provider_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_provider p = {
        .read = mg_openai_read_answer, .sane_ids = 1, .content_pieces = 1, .args_pieces = 1};
    return fz_provider_one(&p, data, size);
}
