/* The model card (README.md) written beside every exported format.
 *
 * It is for whoever receives the weights — a privacy officer, a clinician
 * deciding on a pilot, the next engineer — and says, in this order: what the
 * files are and that this is not a medical device; the privacy guarantee in plain
 * words (epsilon, delta, unit, accountant, mechanism, what it does not cover) or
 * that there is none; the base model; the training data as counts and digests
 * only; the de-identification basis recorded at ingest; the training
 * configuration and outcome (times, hardware, energy where measured); evaluation
 * results when the run has them (RUN/eval.json); intended use and limitations;
 * how to load the files; how to check provenance against manifest.json.
 *
 * Never text from the corpus: every value comes from the manifest, the recipe,
 * metrics.jsonl, eval.json (numbers only) and the corpus file's metadata
 * (attributes and dataset sizes; no token is read). A PHI-scan summary is shown
 * as its numbers and booleans only, so a scanner that one day records examples
 * of what it found cannot leak them into the card. */
#ifndef EHRTUNE_MODEL_CARD_H
#define EHRTUNE_MODEL_CARD_H

#include "data/error.h"
#include "trainer/export.h"

/* Writes the card for format fmt to path (created new, 0600). merge: statistics of
 * the merged export (shards, bytes) or NULL. */
int et_model_card_write(const et_export_run *r, et_export_format fmt, const et_merge_stats *merge,
                        const char *path, et_error *err);

#endif
