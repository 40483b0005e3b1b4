"""Faust agents: each module registers one stage of the pipeline on an app."""
