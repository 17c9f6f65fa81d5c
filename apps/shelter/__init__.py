"""避難所受付 (shelter check-in): see docs/shelter.md."""
