/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: the configuration parser.  The input is a whole
 * configuration file (the -C file), read by config_account as the
 * default account and as the account chosen by an envelope sender.
 * Passwords are never fetched: passwordeval would run a command.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smarthost.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	 conf_fd = -1;
static char	 conf_path[64];
static FILE	*devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Nothing of the machine's: no home, no system file, no relay. */
	setenv("HOME", "/nonexistent", 1);
	setenv("SMARTHOST_SYSCONF", "/nonexistent", 1);
	setenv("SMARTHOST_MAILNAME_FILE", "/nonexistent", 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("SMARTHOST_RELAY");
	unsetenv("SMARTHOST_PASSWORD");
	unsetenv("SMARTHOST_PASSWORD_FILE");
	unsetenv("SMARTHOST_FROM");
	unsetenv("CREDENTIALS_DIRECTORY");
	log_init("fuzz_config");
	/* A file that holds a password must be 0600 to be read at all. */
	if ((conf_fd = memfd_create("conf", MFD_CLOEXEC)) == -1 ||
	    fchmod(conf_fd, 0600) == -1 ||
	    (devnull = fopen("/dev/null", "w")) == NULL) {
		perror("fuzz_config: setup");
		exit(1);
	}
	snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", conf_fd);
	return 0;
}

static void
one(const struct cmdline *cl)
{
	struct account	 a;
	struct error	 e;

	memset(&e, 0, sizeof(e));
	if (config_account(cl, &a, &e) == 0) {
		config_print(devnull, &a);
		account_free(&a);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdline	 cl;

	if (ftruncate(conf_fd, 0) == -1 ||
	    pwrite(conf_fd, data, size, 0) != (ssize_t)size)
		abort();
	memset(&cl, 0, sizeof(cl));
	cl.conffile = conf_path;
	one(&cl);
	cl.from = "alice@example.com";
	one(&cl);
	cl.from = NULL;
	cl.account = "work";
	one(&cl);
	return 0;
}
