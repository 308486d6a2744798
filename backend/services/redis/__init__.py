"""The five Redis services (auth, cache, history, scheduler, timeout), one store each."""
