/*
 * replies.c - showing replies while they stream in.
 *
 * With streaming on, a reply reaches the CLI twice: first as previews
 * (MG_EVENT_ASSISTANT_DELTA, text pieces printed as they come, with no line
 * end yet), then after the step is stored as the usual MG_EVENT_ASSISTANT
 * carrying the whole text. The second must not print the reply again, but it
 * is the truth: if it differs from what was previewed, it is printed after
 * all. Pieces of two replies of one step are told apart by their
 * tool_call_id, which the final event carries too.
 *
 * The line a preview leaves open is ended by whatever comes next: a preview
 * of another reply, or any other event (so a verbose chat's "(thinking)"
 * lines never glue onto a reply). A system notice that arrives while
 * previews are still waiting for their final events can only be the notice
 * that the stream broke off: those previews are forgotten, and the reply
 * that follows is shown in full.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct cli_preview {
    char *id;   /* the send_message call; "" when the provider gave none */
    char *text; /* everything previewed for it */
    size_t len;
};

static const char *id_of(const mg_event *ev)
{
    return ev->tool_call_id ? ev->tool_call_id : "";
}

static void end_line(cli_replies *r)
{
    if (!r->open_id) return;
    fputc('\n', r->out);
    fflush(r->out);
    free(r->open_id);
    r->open_id = NULL;
}

static void forget(cli_replies *r, int i)
{
    free(r->previews[i].id);
    free(r->previews[i].text);
    r->previews[i] = r->previews[--r->npreviews];
}

static void forget_all(cli_replies *r)
{
    while (r->npreviews)
        forget(r, r->npreviews - 1);
}

static int find(const cli_replies *r, const char *id)
{
    for (int i = 0; i < r->npreviews; i++)
        if (strcmp(r->previews[i].id, id) == 0) return i;
    return -1;
}

static void append(cli_replies *r, const char *id, const char *text)
{
    int i = find(r, id);
    if (i < 0) {
        struct cli_preview *grown =
            realloc(r->previews, (size_t)(r->npreviews + 1) * sizeof *r->previews);
        if (!grown) return; /* the final event will then print the reply in full */
        r->previews = grown;
        i = r->npreviews++;
        r->previews[i] = (struct cli_preview){strdup(id), NULL, 0};
    }
    struct cli_preview *p = &r->previews[i];
    size_t n = strlen(text);
    char *longer = realloc(p->text, p->len + n + 1);
    if (!longer || !p->id) {
        free(longer);
        free(p->id);
        r->previews[i] = r->previews[--r->npreviews];
        return;
    }
    memcpy(longer + p->len, text, n + 1);
    p->text = longer;
    p->len += n;
}

static void show_piece(cli_replies *r, const mg_event *ev)
{
    const char *id = id_of(ev);
    if (r->open_id && strcmp(r->open_id, id) != 0) end_line(r);
    if (!r->open_id) {
        fputs(r->prefix ? r->prefix : "", r->out);
        r->open_id = strdup(id);
    }
    fputs(ev->text ? ev->text : "", r->out);
    fflush(r->out);
    append(r, id, ev->text ? ev->text : "");
}

int cli_replies_event(cli_replies *r, const mg_event *ev)
{
    if (ev->type == MG_EVENT_ASSISTANT_DELTA) {
        show_piece(r, ev);
        return 1;
    }
    end_line(r);
    if (ev->type == MG_EVENT_ASSISTANT && ev->tool_call_id) {
        int i = find(r, ev->tool_call_id);
        if (i < 0) return 0;
        int same = ev->text && strcmp(r->previews[i].text, ev->text) == 0;
        forget(r, i);
        return same;
    }
    if (ev->type == MG_EVENT_SYSTEM || ev->type == MG_EVENT_USAGE) forget_all(r);
    return 0;
}

void cli_replies_end(cli_replies *r)
{
    end_line(r);
    forget_all(r);
    free(r->previews);
    r->previews = NULL;
}
