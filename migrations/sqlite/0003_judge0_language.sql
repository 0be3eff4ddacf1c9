-- Each submission's Judge0 language id, beside the request that holds it,
-- so that `GET /judge0/statistics` counts by language without reading
-- the requests; rows of earlier releases take theirs from the request.
-- `GET /judge0/submissions` lists a client's newest first.
ALTER TABLE judge0_submissions ADD COLUMN language_id BIGINT;
UPDATE judge0_submissions
SET language_id = CAST(json_extract(request, '$.language_id') AS BIGINT);
CREATE INDEX judge0_submissions_client_created ON judge0_submissions (client, created_at);
CREATE INDEX judge0_submissions_created ON judge0_submissions (created_at);
