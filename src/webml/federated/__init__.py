"""Federated training with Flower around webml's Trainer."""
