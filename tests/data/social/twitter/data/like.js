window.YTD.like.part0 = [
  {
    "like": {
      "tweetId": "1700000000000000001",
      "fullText": "Sourdough starter day 3: it smells like apples &amp; vinegar.",
      "expandedUrl": "https://twitter.com/i/web/status/1700000000000000001"
    }
  },
  {
    "like": {
      "tweetId": "1700000000000000002",
      "expandedUrl": "https://twitter.com/i/web/status/1700000000000000002"
    }
  }
]