#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "file.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct write_case {
	const char *data;
	size_t len;
	bool durable;
};

static const struct write_case valid[] = {
	{ "", 0, false },
	{ "{\"sid\":\"CA1\"}", 13, false },
	{ "bin\0ary\xff", 8, true },
	{ "x", 1, true },
};

static void make_dir(char dir[64])
{
	strcpy(dir, "/tmp/file-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Number of entries in dir other than . and .. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void expect_content(const char *dir, const char *name, const char *data, size_t len)
{
	char path[256];
	struct buf b;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	buf_init(&b, 1024);
	assert_int_equal(file_read(path, &b), VERR_OK);
	assert_int_equal(b.len, len);
	if (len > 0)
		assert_memory_equal(b.data, data, len);
	buf_free(&b);
}

static void test_write_atomic(void **state)
{
	char dir[64], path[256];
	struct stat st;
	size_t i;

	(void)state;
	make_dir(dir);
	snprintf(path, sizeof path, "%s/doc.json", dir);
	/* each case replaces the one before; only the file remains */
	for (i = 0; i < NELEM(valid); i++) {
		assert_int_equal(file_write_atomic(dir, "doc.json", valid[i].data, valid[i].len,
		                                   valid[i].durable),
		                 VERR_OK);
		expect_content(dir, "doc.json", valid[i].data, valid[i].len);
		assert_int_equal(entries(dir), 1);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	remove_dir(dir);
}

static void test_write_atomic_errors(void **state)
{
	char dir[64], missing[128], sub[128], longname[FILE_MAX_PATH];

	(void)state;
	make_dir(dir);
	snprintf(missing, sizeof missing, "%s/none", dir);
	assert_int_equal(file_write_atomic(missing, "a", "x", 1, true), VERR_IO);

	/* the rename fails (dir/sub is a directory): nothing is left behind */
	snprintf(sub, sizeof sub, "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(file_write_atomic(dir, "sub", "x", 1, false), VERR_IO);
	assert_int_equal(entries(dir), 1);
	assert_int_equal(entries(sub), 0);

	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(file_write_atomic(dir, longname, "x", 1, false), VERR_TOOBIG);
	assert_int_equal(entries(dir), 1);
	remove_dir(dir);
}

/* A reader never sees a partly written file, only the old or the new one. */
static void test_write_atomic_readers(void **state)
{
	static char a[20000], b[30000];
	char dir[64], path[256];
	struct buf r;
	pid_t pid;
	int i, status;

	(void)state;
	memset(a, 'a', sizeof a);
	memset(b, 'b', sizeof b);
	make_dir(dir);
	snprintf(path, sizeof path, "%s/doc", dir);
	assert_int_equal(file_write_atomic(dir, "doc", a, sizeof a, false), VERR_OK);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (i = 0; i < 300; i++) {
			const char *d = i % 2 ? a : b;
			size_t n = i % 2 ? sizeof a : sizeof b;

			if (file_write_atomic(dir, "doc", d, n, false) != VERR_OK)
				_exit(1);
		}
		_exit(0);
	}
	buf_init(&r, sizeof b);
	for (i = 0; i < 300; i++) {
		buf_reset(&r);
		assert_int_equal(file_read(path, &r), VERR_OK);
		if (!(r.len == sizeof a && memcmp(r.data, a, sizeof a) == 0) &&
		    !(r.len == sizeof b && memcmp(r.data, b, sizeof b) == 0))
			fail_msg("read a partly written file (%zu bytes)", r.len);
	}
	buf_free(&r);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(entries(dir), 1);
	remove_dir(dir);
}

static void test_read(void **state)
{
	char dir[64], path[256];
	struct buf b;

	(void)state;
	make_dir(dir);
	snprintf(path, sizeof path, "%s/f", dir);
	buf_init(&b, 8);
	assert_int_equal(file_read(path, &b), VERR_NOTFOUND);
	assert_int_equal(file_write_atomic(dir, "f", "12345", 5, false), VERR_OK);
	assert_int_equal(buf_puts(&b, "ab"), VERR_OK);
	assert_int_equal(file_read(path, &b), VERR_OK); /* appends */
	assert_string_equal(buf_str(&b), "ab12345");
	assert_int_equal(file_read(path, &b), VERR_TOOBIG); /* past the maximum of 8 */
	assert_int_equal(file_read(dir, &b), VERR_IO);      /* a directory */
	buf_free(&b);
	remove_dir(dir);
}

/* Large enough for short reads and writes in several chunks. */
static void test_write_all_read_all(void **state)
{
	static char big[200000];
	char dir[64], path[256];
	struct buf b;
	size_t i;
	int fd;

	(void)state;
	for (i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7);
	make_dir(dir);
	snprintf(path, sizeof path, "%s/big", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(file_write_all(fd, big, sizeof big), VERR_OK);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	buf_init(&b, sizeof big);
	assert_int_equal(file_read_all(fd, &b), VERR_OK);
	assert_int_equal(b.len, sizeof big);
	assert_memory_equal(b.data, big, sizeof big);
	buf_free(&b);
	close(fd);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(file_write_all(fd, "x", 1), VERR_IO);
	close(fd);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_write_atomic_errors),
		cmocka_unit_test(test_write_atomic_readers),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_write_all_read_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
