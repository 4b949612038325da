"""The core: settings, the clock, text, the Message/Chat types, time estimates, Services.

Plain values and protocols that every other part speaks. It imports nothing of
cafebot: no other package, and no module outside ``cafebot.core``.
"""
