"""Sentiment scoring: one interface, three backends (offline e5 + head, any transformers model,
lexicon), and language identification. Pure code: no Kafka here."""
