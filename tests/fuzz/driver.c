/*
 * Fuzz smoke driver for builds without libFuzzer: feeds every file of the
 * seed corpus directories given as arguments to LLVMFuzzerTestOneInput, then
 * a bounded number of deterministic mutations of each seed (byte flips,
 * truncations, insertions, duplications). Sanitizers catch what breaks.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEED (64 * 1024)
#define MUTATIONS_PER_SEED 2000

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void mutate_and_run(const uint8_t *seed, size_t n)
{
	static uint8_t work[MAX_SEED * 2];
	static const char interesting[] = "%&=+;\"'<>\\\0\xff\x80{}[]:,0-9aZ\r\n";
	int i;

	for (i = 0; i < MUTATIONS_PER_SEED; i++) {
		size_t len = n, k, pos;
		int rounds = 1 + (int)(rng() % 4);

		memcpy(work, seed, n);
		while (rounds-- > 0) {
			pos = len ? (size_t)(rng() % len) : 0;
			switch (rng() % 5) {
			case 0: /* flip a byte */
				if (len)
					work[pos] = (uint8_t)rng();
				break;
			case 1: /* truncate */
				len = pos;
				break;
			case 2: /* insert an interesting byte */
				if (len < sizeof work - 1) {
					memmove(work + pos + 1, work + pos, len - pos);
					work[pos] = (uint8_t)interesting[rng() % (sizeof interesting - 1)];
					len++;
				}
				break;
			case 3: /* duplicate a chunk */
				k = len - pos < 32 ? len - pos : 32;
				if (len + k <= sizeof work) {
					memmove(work + pos + k, work + pos, len - pos);
					len += k;
				}
				break;
			default: /* delete a byte */
				if (len) {
					memmove(work + pos, work + pos + 1, len - pos - 1);
					len--;
				}
			}
		}
		LLVMFuzzerTestOneInput(work, len);
	}
}

static int run_file(const char *path)
{
	static uint8_t seed[MAX_SEED];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(seed, 1, sizeof seed, f);
	fclose(f);
	LLVMFuzzerTestOneInput(seed, n);
	mutate_and_run(seed, n);
	return 0;
}

int main(int argc, char **argv)
{
	int i, files = 0;

	for (i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		char path[4096];

		if (d == NULL) {
			fprintf(stderr, "fuzz: cannot open corpus %s\n", argv[i]);
			return 2;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
			if (run_file(path) == 0)
				files++;
		}
		closedir(d);
	}
	if (files == 0) {
		fprintf(stderr, "fuzz: empty corpus\n");
		return 2;
	}
	printf("fuzz: %d seeds, %d runs each, no crash\n", files, MUTATIONS_PER_SEED + 1);
	return 0;
}
