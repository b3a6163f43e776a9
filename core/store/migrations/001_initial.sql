-- Schema version 1 of the AQLM Studio run database.
-- Times are Unix epoch milliseconds (UTC). *_json columns hold JSON objects.
-- A REAL that the engine reported as NaN (a diverged loss) is stored as NULL.
-- The migration runner sets PRAGMA user_version and application_id; do not set them here.

CREATE TABLE models (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL,
  path         TEXT    NOT NULL UNIQUE CHECK (path <> ''),
  format       TEXT    NOT NULL,          -- gguf, safetensors, hf-aqlm, llama2c
  architecture TEXT    NOT NULL,          -- llama, mistral, qwen2
  parameters   INTEGER NOT NULL CHECK (parameters >= 0),
  dtype        TEXT    NOT NULL,          -- Q4_1, bfloat16, aqlm-2x8g8, ...
  size_bytes   INTEGER NOT NULL CHECK (size_bytes >= 0),
  added_ms     INTEGER NOT NULL
);

CREATE TABLE runs (
  id             INTEGER PRIMARY KEY,
  model_id       INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  method         TEXT    NOT NULL CHECK (method IN ('aqlm', 'gptq', 'rtn')),
  config         TEXT    NOT NULL CHECK (config <> ''),   -- 2x8g8, w3g128, ...
  settings_json  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(settings_json)),
  status         TEXT    NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'running', 'paused', 'finished', 'failed', 'cancelled')),
  error_message  TEXT    NOT NULL DEFAULT '',
  created_ms     INTEGER NOT NULL,
  started_ms     INTEGER,
  finished_ms    INTEGER,
  output_dir     TEXT    NOT NULL DEFAULT '',
  checkpoint_dir TEXT    NOT NULL DEFAULT '',
  bits_predicted REAL,
  bits_measured  REAL,
  output_bytes   INTEGER CHECK (output_bytes >= 0)
);
CREATE INDEX runs_by_model ON runs(model_id);
CREATE INDEX runs_by_status ON runs(status);

-- One row per quantized linear layer; a resumed run overwrites the row of a layer it redoes.
CREATE TABLE layer_metrics (
  id             INTEGER PRIMARY KEY,
  run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  block          INTEGER NOT NULL CHECK (block >= 0),
  layer          TEXT    NOT NULL CHECK (layer <> ''),    -- self_attn.q_proj, ...
  config         TEXT    NOT NULL,
  loss           REAL,
  relative_error REAL,
  seconds        REAL    NOT NULL CHECK (seconds >= 0),
  bits           REAL    NOT NULL,
  UNIQUE (run_id, block, layer)
);

-- The many rows: the key is also the read order of the dashboard plots, so no rowid.
CREATE TABLE step_losses (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  block  INTEGER NOT NULL CHECK (block >= 0),
  layer  TEXT    NOT NULL,                                -- '' for a whole-block phase (finetune)
  step   INTEGER NOT NULL CHECK (step >= 0),
  phase  TEXT    NOT NULL CHECK (phase <> ''),            -- adam, beam, finetune, ...
  loss   REAL,
  PRIMARY KEY (run_id, block, layer, step, phase)
) WITHOUT ROWID;

-- An evaluation of a model file (run_id NULL) or of a run's output (model_id = the run's model).
CREATE TABLE evaluations (
  id         INTEGER PRIMARY KEY,
  model_id   INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  run_id     INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  dataset    TEXT    NOT NULL CHECK (dataset <> ''),
  seqlen     INTEGER NOT NULL CHECK (seqlen > 0),
  windows    INTEGER NOT NULL CHECK (windows > 0),
  perplexity REAL,
  nll        REAL,
  tokens     INTEGER NOT NULL CHECK (tokens >= 0),
  seconds    REAL    NOT NULL CHECK (seconds >= 0),
  created_ms INTEGER NOT NULL
);
CREATE INDEX evaluations_by_model ON evaluations(model_id, dataset, seqlen);
CREATE INDEX evaluations_by_run ON evaluations(run_id);
CREATE TRIGGER evaluations_model_is_the_runs BEFORE INSERT ON evaluations
WHEN NEW.run_id IS NOT NULL AND NEW.model_id IS NOT (SELECT model_id FROM runs WHERE id = NEW.run_id)
BEGIN
  SELECT RAISE(ABORT, 'an evaluation of a run must name the run''s model');
END;

CREATE TABLE artifacts (
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind       TEXT    NOT NULL CHECK (kind <> ''),         -- hf-aqlm, checkpoint, log, ...
  path       TEXT    NOT NULL CHECK (path <> ''),
  bytes      INTEGER NOT NULL CHECK (bytes >= 0),
  sha256     TEXT    NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
  created_ms INTEGER NOT NULL,
  UNIQUE (run_id, path)
);

-- A chat is with a model file or with a run's output (at most one; both NULL once it is removed).
CREATE TABLE conversations (
  id            INTEGER PRIMARY KEY,
  title         TEXT    NOT NULL,
  model_id      INTEGER REFERENCES models(id) ON DELETE SET NULL,
  run_id        INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  system_prompt TEXT    NOT NULL DEFAULT '',
  sampling_json TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(sampling_json)),
  created_ms    INTEGER NOT NULL,
  CHECK (model_id IS NULL OR run_id IS NULL)
);
CREATE INDEX conversations_by_model ON conversations(model_id);
CREATE INDEX conversations_by_run ON conversations(run_id);

CREATE TABLE messages (
  id                    INTEGER PRIMARY KEY,
  conversation_id       INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role                  TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
  content               TEXT    NOT NULL,
  tokens                INTEGER NOT NULL DEFAULT 0 CHECK (tokens >= 0),
  tokens_per_second     REAL,
  time_to_first_token_s REAL,
  created_ms            INTEGER NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
