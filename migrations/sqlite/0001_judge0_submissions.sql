-- Judge0 submissions, accepted and kept until `judge0.keep_results_s` after
-- they finish. `request` and `result` are JSON documents (src/judge0).
CREATE TABLE judge0_submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    -- Judge0's status: 1 In Queue, 2 Processing, 3 and above finished.
    status_id BIGINT NOT NULL,
    request TEXT NOT NULL,
    result TEXT,
    -- Milliseconds since the Unix epoch.
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    -- The service that claimed it (its `instance` and boot), and until
    -- when its claim holds unless renewed.
    instance TEXT,
    boot TEXT,
    lease_until BIGINT,
    -- How many times it was claimed.
    attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX judge0_submissions_queue ON judge0_submissions (status_id, id);
CREATE INDEX judge0_submissions_finished ON judge0_submissions (finished_at);
