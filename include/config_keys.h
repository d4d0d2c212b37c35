/* config_keys.h — the configuration's vocabulary: one table of keys per
 * section (name, kind, where the value is stored, bounds, whether it
 * repeats, may be empty or takes a restart, its default and one line of
 * help), the server line's option table, and the parser state they share
 * with config.c. Only config.c and config_keys.c include this header;
 * everyone else reads the parsed struct config. */
#ifndef TCPLB_CONFIG_KEYS_H
#define TCPLB_CONFIG_KEYS_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

#define CONFIG_NAME_MAX 64
#define CONFIG_KEYS_MAX 64

enum config_section { SECTION_NONE, SECTION_GLOBAL, SECTION_LISTENER, SECTION_POOL };

/* The parser's state while inih walks the file. The reader callbacks count
 * lines, so `line` is always the line the handler is looking at. */
struct config_parse {
    const char *file;
    struct config *cfg;
    int line;
    int failed;
    int fail_line;              /* line of the recorded error */
    char *err;
    size_t errlen;

    enum config_section section;
    size_t index;               /* listener or pool being filled */
    int section_line;
    int global_seen;
    int workers_auto;
    struct { const char *key; int line; } keys[CONFIG_KEYS_MAX];
    size_t nkeys;

    /* input: either a FILE or a string */
    FILE *fp;
    const char *text;
};

/* Records the first error only ("FILE:LINE: ..."): later ones are usually
 * its echoes. Returns 0, the handlers' "failed". */
int config_fail(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 1 for a name of letters, digits, '_', '-', '.' of 1..CONFIG_NAME_MAX. */
int config_valid_name(const char *name);

enum config_kind {
    CONFIG_UINT,        /* unsigned, min..max */
    CONFIG_ULONG,       /* unsigned long, min..max */
    CONFIG_DURATION,    /* double seconds; min 1: must be above zero */
    CONFIG_WORD,        /* int (an enum): one of words[] */
    CONFIG_STRING,      /* char *, owned */
    CONFIG_CUSTOM,      /* set() does it all */
};

enum config_key_flags {
    CONFIG_REPEAT = 1 << 0,     /* may appear more than once in a section */
    CONFIG_EMPTY_OK = 1 << 1,   /* `key =` is handed to the parser */
    CONFIG_RESTART = 1 << 2,    /* a reload keeps the running value (logged) */
    CONFIG_NO_RELOAD = 1 << 3,  /* a reload that changes it is refused */
};

/* A key that takes one of a few words. */
struct config_word {
    const char *word;
    int value;
};

struct config_key;
/* Parses <value> into <field> (the key's place in the section's struct).
 * Returns 1, or 0 after config_fail(). */
typedef int config_setter(struct config_parse *p, const struct config_key *k,
                          const char *value, void *field);

struct config_key {
    const char *name;
    enum config_kind kind;
    size_t offset;                       /* of its field in the section struct */
    unsigned long min, max;              /* CONFIG_UINT/ULONG/DURATION */
    const struct config_word *words;     /* CONFIG_WORD, NULL-word terminated */
    config_setter *set;                  /* CONFIG_CUSTOM, or a check after
                                            the kind's own parse */
    unsigned flags;                      /* enum config_key_flags */
    const char *def;                     /* default as a file writes it, NULL:
                                            zero / none / computed */
    const char *help;                    /* one line, for docs and man pages */
};

/* The keys of a section, and one by name (NULL when unknown). */
const struct config_key *config_section_keys(enum config_section sec, size_t *n);
const struct config_key *config_key_find(enum config_section sec, const char *name);
const char *config_section_label(enum config_section sec);   /* "[global]" */

/* Sets <k> of the struct at <obj> from <value>. 1 ok, 0 failed. */
int config_key_set(struct config_parse *p, const struct config_key *k,
                   const char *value, void *obj);

/* Gives every key of <sec> that has a default its default value. */
void config_section_defaults(struct config_parse *p, enum config_section sec, void *obj);

/* A server name: config_valid_name()'s letters, digits, '_', '-', '.',
 * and also ':', '[' and ']', so that an added or discovered server may be
 * named by its address ("10.0.0.5:8080", "[fd00::5]:8080"). */
int config_valid_server_name(const char *name);

/* Server line options ("weight=N", "send-proxy", ...): parses the options
 * after NAME ADDR (<opts>, space separated, modified) into <s>. 0, or -1
 * with "server NAME: ..." in err. Shared with `add server`. */
int config_server_options(const char *name, char *opts, struct server *s,
                          char *err, size_t errlen);
/* "weight=N, maxconn=N, ..." for messages and help. */
const char *config_server_option_names(void);
/* The name of the i-th server line option ("weight", "send-proxy"), or NULL
 * past the last: for tests that check the docs against the table. */
const char *config_server_option_name(size_t i);

/* The names of [global] keys flagged CONFIG_RESTART whose value differs
 * between <now> and <next>; returns how many (at most max). */
size_t config_restart_changes(const struct config *now, const struct config *next,
                              const char **names, size_t max);

#endif
