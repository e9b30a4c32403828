"""Project conventions and CI/CD: ``keel init``, ``keel lint``, ``keel gate``, ``keel ci init``."""
