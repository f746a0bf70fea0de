"""Training-data generation: reply schemas, citation checks, group selection and the concurrent runner."""
