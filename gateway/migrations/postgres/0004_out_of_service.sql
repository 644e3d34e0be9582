-- Points taken out of service for maintenance (until a time, with a reason and who).
CREATE TABLE out_of_service (
    site TEXT NOT NULL,
    point TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (site, point)
);
