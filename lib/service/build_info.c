/* gw_build_info: goodwill_build_info and --version (see goodwill/build_info.h). */
#include "goodwill/build_info.h"

#include <errno.h>

#include "goodwill/feeling.h"
#include "goodwill/version.h"

typedef struct build_info {
  gw_metric_family *family;
} build_info;

static const char *const build_info_labels[] = {"version", "model_version"};
static const gw_metric_spec build_info_metrics[] = {
    GW_METRIC_FAMILY(build_info, family, .name = "goodwill_build_info",
                     .help = "Always 1; its labels tell the goodwill version and the feeling "
                             "model version.",
                     .type = GW_METRIC_GAUGE, .label_names = build_info_labels, .nlabels = 2),
};

int gw_build_info_register(gw_metrics *m, const char *model_version) {
  char deflt[96];
  if (model_version == NULL) {
    gw_feeling_default_version(deflt, sizeof deflt);
    model_version = deflt;
  }
  build_info b = {NULL};
  int rc = gw_metrics_register_all(m, build_info_metrics, 1, &b, NULL);
  if (rc != 0)
    return rc;
  const char *values[] = {GW_VERSION, model_version};
  gw_metric_set(gw_metrics_series(b.family, values), 1);
  return 0;
}

int gw_build_info_set_model(gw_metrics *m, const char *model_version) {
  gw_metric_family *family = gw_metrics_family(m, "goodwill_build_info");
  if (family == NULL)
    return -ENOENT;
  /* One series at a time: the old model's must not linger as a second "current" version. */
  gw_metrics_family_clear(family);
  const char *values[] = {GW_VERSION, model_version};
  gw_metric_set(gw_metrics_series(family, values), 1);
  return 0;
}

void gw_build_info_print(FILE *out, const char *program) {
  char model[96];
  gw_feeling_default_version(model, sizeof model);
  fprintf(out, "%s %s (feeling model %s)\n", program, GW_VERSION, model);
}
