/*
 * The hash puzzle as a WASI command: argv is [task id, input, difficulty];
 * prints the counter followed by a newline.  Exit code 2 on bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>

#define WW_HASH_COMMAND
#include "hash.c"

static int parse_int(const char *text, long long *out) {
    char *end = 0;
    *out = strtoll(text, &end, 10);
    return end != text && *end == '\0';
}

int main(int argc, char **argv) {
    long long input, difficulty;
    if (argc != 3) {
        fprintf(stderr, "usage: hash_cmd INPUT DIFFICULTY (argv[0] is the task id)\n");
        return 2;
    }
    if (!parse_int(argv[1], &input) || !parse_int(argv[2], &difficulty)) {
        fprintf(stderr, "hash_cmd: INPUT and DIFFICULTY must be integers\n");
        return 2;
    }
    printf("%lld\n", solve(input, difficulty));
    return 0;
}
