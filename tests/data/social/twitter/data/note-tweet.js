window.YTD.note_tweet.part0 = [
  {
    "noteTweet": {
      "noteTweetId": "1600000000000000099",
      "updatedAt": "2023-03-01T12:00:00.000Z",
      "lifecycle": {
        "value": "{}",
        "name": "org.json.JSONObject",
        "originalTypeName": "org.json.JSONObject"
      },
      "createdAt": "2023-03-01T12:00:00.000Z",
      "core": {
        "styletags": [],
        "urls": [
          {
            "shortUrl": "https://t.co/LONG1",
            "displayUrl": "example.org/local-first",
            "expandedUrl": "https://example.org/local-first",
            "fromIndex": "170",
            "toIndex": "193"
          }
        ],
        "text": "Thread on why local-first software matters: your data stays on your machine, sync is a feature and not a landlord, and the app still works on a plane. Details in the write-up https://t.co/LONG1 and more to come. This part is only in the note tweet because tweets.js cuts at 280 characters, so importers must read note-tweet.js.",
        "mentions": [],
        "cashtags": [],
        "hashtags": []
      }
    }
  }
]