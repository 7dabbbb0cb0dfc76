"""The experiment harness: what runs are compared, and how."""
