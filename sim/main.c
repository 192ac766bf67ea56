/*
 * twilio_sim: a local Twilio Voice simulator (sim/README.md).
 *   twilio_sim [-s SOCKET]   FastCGI server (listen socket on fd 0 from
 *                            spawn-fcgi, or a unix socket path)
 *   twilio_sim inbound …     play one incoming call (inbound.h)
 * Exit status 2 when a required setting is missing or malformed.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rest.h"
#include "server.h"
#include "simcfg.h"
#include "inbound.h"
#include "store.h"

static int usage(void)
{
	fprintf(stderr, "usage: twilio_sim [-s SOCKET]\n"
	                "       twilio_sim inbound --from E164 --to E164 --url URL [options]\n");
	return 64;
}

int main(int argc, char **argv)
{
	struct server_opts opts = { "sim", SIMREST_MAX_BODY, NULL };
	struct simcfg cfg;
	char err[SIMCFG_MAX_ERROR + SIMCFG_MAX_PATH];
	bool inbound = argc >= 2 && strcmp(argv[1], "inbound") == 0;

	if (!inbound) {
		if (argc == 3 && strcmp(argv[1], "-s") == 0)
			opts.socket_path = argv[2];
		else if (argc != 1)
			return usage();
	}
	if (simcfg_load(&cfg, err, sizeof err) != VERR_OK) {
		fprintf(stderr, "twilio_sim: %s\n", err);
		return 2;
	}
	if (simstore_init(cfg.state_dir, err, sizeof err) != VERR_OK) {
		fprintf(stderr, "twilio_sim: SIM_STATE_DIR: %s\n", err);
		return 2;
	}
	if (inbound)
		return siminbound_main(&cfg, argc - 1, argv + 1);
	return server_run_single(&opts, simrest_handle, &cfg);
}
