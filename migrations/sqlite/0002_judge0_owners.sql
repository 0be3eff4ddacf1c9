-- Each submission's owner and size (security review 3, L3, M3, M4).
-- `client` is the front door's client that made it (`key:` and the start
-- of its key's hash, or `ip:…` when keys are off); rows of earlier
-- releases have none (''), and with keys on only a key granted
-- `judge0:all` sees them. `bytes` is what the row holds (its request, and
-- its result once finished), counted against the stored bounds.
-- `claimed_at` (ms since the epoch) is when it was last claimed: workers
-- serve the client least recently served.
ALTER TABLE judge0_submissions ADD COLUMN client TEXT NOT NULL DEFAULT '';
ALTER TABLE judge0_submissions ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE judge0_submissions ADD COLUMN claimed_at BIGINT;
UPDATE judge0_submissions
SET bytes = length(CAST(request AS BLOB)) + COALESCE(length(CAST(result AS BLOB)), 0);
CREATE INDEX judge0_submissions_client ON judge0_submissions (client, status_id);
CREATE INDEX judge0_submissions_client_claimed ON judge0_submissions (client, claimed_at);
