/*
 * test_cfgref - the config in force: holders keep theirs across a swap
 *
 * Freed configs are caught by ASan and valgrind (a use after free, or a
 * leak when a last reference does not free).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cfgref.h"
#include "check.h"

/* load_prefix - a config whose routing.prefix is prefix */
static struct cfg *
load_prefix(const char *path, const char *prefix)
{
    char *errors = NULL;
    struct cfg *cfg;
    FILE *f = fopen(path, "w");

    if (f == NULL ||
        fprintf(f, "routing: { prefix = \"%s\"; };\n", prefix) < 0 ||
        fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    cfg = cfg_load(path, &errors);
    if (cfg == NULL) {
        printf("%s", errors);
        exit(2);
    }
    return cfg;
}

int
main(void)
{
    char dir[] = "/tmp/test_cfgref.XXXXXX";
    char path[64];
    struct cfgref *old, *cur, *again;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/mxswitch.conf", dir);
    cfgref_init(load_prefix(path, "one:"));
    old = cfgref_hold();
    check_str("a hold gives the config in force", "prefix", old->cfg->prefix,
              "one:");
    check_int("the first config is generation 1", "gen", (long long)old->gen,
              1);
    check_int("with no reload a hold is current", "current",
              cfgref_is_current(old), 1);
    cfgref_swap(load_prefix(path, "two:"));
    check_str("a holder keeps its config across a swap", "prefix",
              old->cfg->prefix, "one:");
    check_int("after a swap an old hold is not current", "current",
              cfgref_is_current(old), 0);
    cur = cfgref_hold();
    check_str("a hold after the swap gives the new config", "prefix",
              cur->cfg->prefix, "two:");
    check_int("a swap counts a generation", "gen", (long long)cur->gen, 2);
    cfgref_release(old); /* the last reference to "one:": freed here */
    again = cfgref_hold();
    check_int("holds of one config share its holder", "same", again == cur, 1);
    cfgref_release(again);
    cfgref_shutdown();
    check_str("a holder outlives the shutdown of the slot", "prefix",
              cur->cfg->prefix, "two:");
    cfgref_release(cur);
    cfgref_release(NULL);
    check_int("releasing NULL does nothing", "survived", 1, 1);
    unlink(path);
    rmdir(dir);
    return check_done("test_cfgref");
}
