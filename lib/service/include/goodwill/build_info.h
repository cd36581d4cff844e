/*
 * gw_build_info: what every goodwill daemon tells about itself, the same way: the metric
 * goodwill_build_info{version,model_version} = 1 on its admin /metrics (the convention of
 * Prometheus exporters, so dashboards and alerts can join on it and see rollouts), and the
 * text of --version.
 *
 * Loop thread only (metrics are not locked). model_version is the feeling model the daemon
 * scores with, or NULL for the built-in default model's (daemons that do not score).
 * Errors: gw_metrics_register's.
 */
#ifndef GOODWILL_BUILD_INFO_H
#define GOODWILL_BUILD_INFO_H

#include <stddef.h>
#include <stdio.h>

#include "goodwill/metrics.h"

int gw_build_info_register(gw_metrics *m, const char *model_version);

/* A daemon that reloaded its model: goodwill_build_info now has model_version (borrowed for
 * the call) instead of the old one. -ENOENT when gw_build_info_register was not called on m. */
int gw_build_info_set_model(gw_metrics *m, const char *model_version);

/* "<program> <version> (feeling model <model version>)" and a newline. */
void gw_build_info_print(FILE *out, const char *program);

#endif
