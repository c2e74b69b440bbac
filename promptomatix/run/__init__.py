"""A run in stages: spec → data → search → held-out scoring → result, over a typed `RunState`.

`stages` holds the steps, `runner` strings them together under the one handler of interrupts and failures
(`ending`), `recorder` is the only writer of session state during a run, `checkpoint` the typed best-so-far the
backends hand over. `promptomatix.pipeline.Run` is the entry point for a new run; `followup` (refine, resume)
builds a state from a saved session and runs the same stages. Nothing is imported here, so the backends can import
`promptomatix.run.checkpoint` without pulling in the runner.
"""
