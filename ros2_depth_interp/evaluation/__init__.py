"""Evaluation on real data: metrics, classical baselines, figures."""
