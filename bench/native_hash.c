/* The hash puzzle natively: the same source as hash.wasm (examples/hash/hash.c). */
#include <stdio.h>
#include <stdlib.h>
#define WW_HASH_COMMAND 1
#include "hash.c"

int main(int argc, char **argv) {
    long long input = argc > 1 ? atoll(argv[1]) : 0;
    long long difficulty = argc > 2 ? atoll(argv[2]) : 5;
    printf("%lld\n", solve(input, difficulty));
    return 0;
}
