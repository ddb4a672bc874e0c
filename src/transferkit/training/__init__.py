"""The training loop and what it needs: batching, optimizer and schedule, batched inference."""
