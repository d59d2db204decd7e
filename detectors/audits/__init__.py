"""Memorization audits: canary exposure, membership inference, extraction and regurgitation."""
