"""How the pipeline runs: artifact paths, the step table, profiles, the artifact store and tables, the
papermill runner, seeding. Imports nothing else of gatoms."""
