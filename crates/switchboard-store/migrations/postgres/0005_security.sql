-- Health: one row that the health check rewrites, to learn whether writes succeed.
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
