"""Batch optimization: many jobs from one file, each in its own session, locally or as Ray tasks.

Ray is imported only by the ray executor and the actor pool, so importing this package stays cheap.
"""

from __future__ import annotations

from promptomatix.batch.jobs import Job, expand, job_key, load_jobs
from promptomatix.batch.runner import BatchOptions, BatchReport, run_batch
from promptomatix.batch.summary import JobRow

__all__ = ["BatchOptions", "BatchReport", "Job", "JobRow", "expand", "job_key", "load_jobs", "run_batch"]
